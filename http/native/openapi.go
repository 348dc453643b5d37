package native

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/ferrymigrate/ferry"
)

// The OpenAPI 3.1 document of the native API, built once in Go. It lists
// its operations on its own (not from the route table); a test checks that
// every registered route is documented and every documented one registered.

type opDoc struct {
	method, path, tag, summary string
	query                      []string // names of components.parameters
	body                       string   // request schema; "" for none
	bodyOptional               bool
	status                     int    // success status
	resp                       string // response schema; "" for no content
	errors                     []int
	public                     bool
}

var listParams = []string{"offset", "limit"}

func operations() []opDoc {
	e4 := []int{400, 401, 403, 404}
	e5 := []int{400, 401, 403, 404, 409}
	return []opDoc{
		{method: "GET", path: "/api/v1/openapi.json", tag: "meta", summary: "This OpenAPI document", status: 200, resp: "", public: true},

		{method: "GET", path: "/api/v1/orgs", tag: "organizations", summary: "List the caller's organizations", query: listParams, status: 200, resp: "OrganizationList", errors: []int{400, 401}},
		{method: "GET", path: "/api/v1/orgs/{orgId}", tag: "organizations", summary: "Get an organization", status: 200, resp: "Organization", errors: e4},
		{method: "GET", path: "/api/v1/orgs/{orgId}/api-keys", tag: "api-keys", summary: "List the organization's API keys (ORG_OWNER)", query: listParams, status: 200, resp: "APIKeyList", errors: e4},
		{method: "POST", path: "/api/v1/orgs/{orgId}/api-keys", tag: "api-keys", summary: "Create an API key (ORG_OWNER); the answer carries the private key, shown only once", body: "APIKeyInput", status: 201, resp: "APIKeyCreated", errors: e4},
		{method: "DELETE", path: "/api/v1/orgs/{orgId}/api-keys/{keyId}", tag: "api-keys", summary: "Delete an API key (ORG_OWNER)", status: 204, errors: e4},

		{method: "GET", path: "/api/v1/projects", tag: "projects", summary: "List the projects the caller can see", query: []string{"offset", "limit", "orgId"}, status: 200, resp: "ProjectList", errors: []int{400, 401, 404}},
		{method: "POST", path: "/api/v1/projects", tag: "projects", summary: "Create a project", body: "ProjectInput", status: 201, resp: "Project", errors: e5},
		{method: "GET", path: "/api/v1/projects/{projectId}", tag: "projects", summary: "Get a project", status: 200, resp: "Project", errors: e4},
		{method: "PATCH", path: "/api/v1/projects/{projectId}", tag: "projects", summary: "Rename a project (ORG_OWNER)", body: "ProjectRename", status: 200, resp: "Project", errors: e5},
		{method: "DELETE", path: "/api/v1/projects/{projectId}", tag: "projects", summary: "Delete a project with no unfinished job (ORG_OWNER)", status: 204, errors: e5},

		{method: "GET", path: "/api/v1/projects/{projectId}/endpoints", tag: "endpoints", summary: "List the project's registered endpoints", query: listParams, status: 200, resp: "EndpointList", errors: e4},
		{method: "POST", path: "/api/v1/projects/{projectId}/endpoints", tag: "endpoints", summary: "Register an endpoint (the password is stored, never returned)", body: "EndpointInput", status: 201, resp: "Endpoint", errors: e5},
		{method: "GET", path: "/api/v1/projects/{projectId}/endpoints/{endpoint}", tag: "endpoints", summary: "Get an endpoint by id or name", status: 200, resp: "Endpoint", errors: e4},
		{method: "PATCH", path: "/api/v1/projects/{projectId}/endpoints/{endpoint}", tag: "endpoints", summary: "Change an endpoint (only the fields given; the kind cannot change; jobs already created keep their copy)", body: "EndpointInput", status: 200, resp: "Endpoint", errors: e5},
		{method: "DELETE", path: "/api/v1/projects/{projectId}/endpoints/{endpoint}", tag: "endpoints", summary: "Delete an endpoint by id or name", status: 204, errors: e4},

		{method: "GET", path: "/api/v1/projects/{projectId}/migrations", tag: "migrations", summary: "List the project's migrations (oldest first)", query: []string{"offset", "limit", "state", "engine", "dialect"}, status: 200, resp: "MigrationList", errors: e4},
		{method: "POST", path: "/api/v1/projects/{projectId}/migrations", tag: "migrations", summary: "Create a migration; with start=true it is queued for an agent at once", body: "MigrationInput", status: 201, resp: "Migration", errors: e5},
		{method: "GET", path: "/api/v1/projects/{projectId}/migrations/{migrationId}", tag: "migrations", summary: "Get a migration with its steps, counters, lag and cutover readiness", status: 200, resp: "Migration", errors: e4},
		{method: "DELETE", path: "/api/v1/projects/{projectId}/migrations/{migrationId}", tag: "migrations", summary: "Delete a migration that no agent runs", status: 204, errors: e5},
		{method: "POST", path: "/api/v1/projects/{projectId}/migrations/{migrationId}/start", tag: "migrations", summary: "Start a created (or retry a failed) migration", status: 200, resp: "Migration", errors: e5},
		{method: "POST", path: "/api/v1/projects/{projectId}/migrations/{migrationId}/pause", tag: "migrations", summary: "Pause a running migration at its checkpoint", status: 200, resp: "Migration", errors: e5},
		{method: "POST", path: "/api/v1/projects/{projectId}/migrations/{migrationId}/resume", tag: "migrations", summary: "Resume a paused migration from its checkpoint", status: 200, resp: "Migration", errors: e5},
		{method: "POST", path: "/api/v1/projects/{projectId}/migrations/{migrationId}/cutover", tag: "migrations", summary: "Cut over: finish the sync and complete (during incremental sync only)", status: 200, resp: "Migration", errors: e5},
		{method: "POST", path: "/api/v1/projects/{projectId}/migrations/{migrationId}/verify", tag: "migrations", summary: "Verify on demand: start a verification-only job over the same source and target; answers that job", status: 200, resp: "Migration", errors: e5},
		{method: "POST", path: "/api/v1/projects/{projectId}/migrations/{migrationId}/release", tag: "migrations", summary: "Release a migration and what it holds", status: 200, resp: "Migration", errors: e5},
		{method: "POST", path: "/api/v1/projects/{projectId}/migrations/{migrationId}/release-source", tag: "migrations", summary: "Lift the write block the cutover left on the source (Redis CLIENT UNPAUSE, MySQL SET GLOBAL read_only=OFF)", status: 200, resp: "Migration", errors: e5},
		{method: "POST", path: "/api/v1/projects/{projectId}/migrations/{migrationId}/extend-cutover", tag: "migrations", summary: "Push the cutover deadline out by some hours", body: "ExtendCutoverInput", status: 200, resp: "Migration", errors: e5},

		{method: "POST", path: "/api/v1/projects/{projectId}/validations", tag: "validations", summary: "Validate a would-be migration (the engine's precheck, run in the background)", body: "MigrationInput", status: 201, resp: "Validation", errors: e4},
		{method: "GET", path: "/api/v1/projects/{projectId}/validations/{validationId}", tag: "validations", summary: "Get a validation", status: 200, resp: "Validation", errors: e4},

		{method: "GET", path: "/api/v1/projects/{projectId}/pipelines", tag: "pipelines", summary: "List the project's pipelines", query: listParams, status: 200, resp: "PipelineList", errors: e4},
		{method: "POST", path: "/api/v1/projects/{projectId}/pipelines", tag: "pipelines", summary: "Create a pipeline", body: "PipelineInput", status: 201, resp: "Pipeline", errors: e5},
		{method: "GET", path: "/api/v1/projects/{projectId}/pipelines/{pipelineName}", tag: "pipelines", summary: "Get a pipeline", status: 200, resp: "Pipeline", errors: e4},
		{method: "PATCH", path: "/api/v1/projects/{projectId}/pipelines/{pipelineName}", tag: "pipelines", summary: "Change a pipeline (only the fields given)", body: "PipelinePatch", status: 200, resp: "Pipeline", errors: e5},
		{method: "DELETE", path: "/api/v1/projects/{projectId}/pipelines/{pipelineName}", tag: "pipelines", summary: "Delete a pipeline with no run in progress", status: 204, errors: e5},
		{method: "POST", path: "/api/v1/projects/{projectId}/pipelines/{pipelineName}/pause", tag: "pipelines", summary: "Pause a pipeline's schedule", status: 200, resp: "Pipeline", errors: e4},
		{method: "POST", path: "/api/v1/projects/{projectId}/pipelines/{pipelineName}/resume", tag: "pipelines", summary: "Resume a pipeline's schedule", status: 200, resp: "Pipeline", errors: e4},
		{method: "POST", path: "/api/v1/projects/{projectId}/pipelines/{pipelineName}/trigger", tag: "pipelines", summary: "Queue an on-demand run", body: "TriggerInput", bodyOptional: true, status: 201, resp: "PipelineRun", errors: e5},
		{method: "GET", path: "/api/v1/projects/{projectId}/pipelines/{pipelineName}/runs", tag: "pipelines", summary: "List a pipeline's runs (newest first)", query: listParams, status: 200, resp: "PipelineRunList", errors: e4},
		{method: "GET", path: "/api/v1/projects/{projectId}/pipelines/{pipelineName}/runs/{runId}", tag: "pipelines", summary: "Get a run", status: 200, resp: "PipelineRun", errors: e4},
		{method: "DELETE", path: "/api/v1/projects/{projectId}/pipelines/{pipelineName}/runs/{runId}", tag: "pipelines", summary: "Delete a finished run's dataset now (the run becomes DATASET_DELETED)", status: 200, resp: "PipelineRun", errors: e5},

		{method: "GET", path: "/api/v1/agents", tag: "agents", summary: "List the migration hosts (agents)", query: listParams, status: 200, resp: "AgentList", errors: []int{400, 401}},
	}
}

// ---- schema helpers ----

type obj = map[string]any

func ref(name string) obj      { return obj{"$ref": "#/components/schemas/" + name} }
func str(desc string) obj      { return withDesc(obj{"type": "string"}, desc) }
func integer(desc string) obj  { return withDesc(obj{"type": "integer", "format": "int64"}, desc) }
func number(desc string) obj   { return withDesc(obj{"type": "number", "format": "double"}, desc) }
func boolean(desc string) obj  { return withDesc(obj{"type": "boolean"}, desc) }
func dateTime(desc string) obj { return withDesc(obj{"type": "string", "format": "date-time"}, desc) }
func array(items obj) obj      { return obj{"type": "array", "items": items} }
func strMap(desc string) obj {
	return withDesc(obj{"type": "object", "additionalProperties": obj{"type": "string"}}, desc)
}
func id24(desc string) obj    { return withDesc(obj{"type": "string", "pattern": "^[a-f0-9]{24}$"}, desc) }
func enum(vals ...string) obj { return obj{"type": "string", "enum": vals} }
func withDesc(o obj, d string) obj {
	if d != "" {
		o["description"] = d
	}
	return o
}

func object(props obj, required ...string) obj {
	o := obj{"type": "object", "properties": props}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

func listOf(item string) obj {
	return object(obj{"items": array(ref(item)), "total": integer("count before paging"), "offset": integer(""), "limit": integer("")}, "items", "total", "offset", "limit")
}

func enumOf[T ~string](vals []T) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = string(v)
	}
	return out
}

func schemas() obj {
	stateNames := enumOf(states)
	stateNames = append(stateNames, string(ferry.StateDeleted))
	steps := enumOf(ferry.StepOrder)
	kinds := enumOf(ferry.Kinds)
	endpointProps := func(withSecret bool) obj {
		p := obj{
			"name":          str("registered endpoint name (unique in the project); in a job, a name alone refers to a registered endpoint"),
			"kind":          enum(kinds...),
			"addrs":         array(str("host:port")),
			"username":      str(""),
			"database":      str("Redis db, MySQL schema or MongoDB auth database"),
			"tls":           boolean(""),
			"tlsSkipVerify": boolean(""),
			"caCertPem":     str(""),
			"cluster":       boolean("Redis Cluster, MongoDB sharded cluster"),
			"options":       strMap("engine-specific settings; values of secret-looking names are blanked in answers"),
		}
		if withSecret {
			p["password"] = withDesc(obj{"type": "string", "writeOnly": true}, "stored, never returned")
		} else {
			p["id"] = id24("")
			p["projectId"] = id24("")
			p["hasPassword"] = boolean("whether a password is stored (the password itself is never returned)")
			p["createdAt"] = dateTime("")
		}
		return p
	}
	return obj{
		"Error": object(obj{"error": object(obj{
			"code":    enum(ferry.EINVALID, ferry.EUNAUTHORIZED, ferry.EFORBIDDEN, ferry.ENOTFOUND, ferry.ECONFLICT, ferry.ENOTIMPLEMENTED, ferry.ERATELIMIT, ferry.EINTERNAL),
			"message": str(""),
			"field":   str("the request field at fault"),
			"reason":  str("machine-readable sub-code, e.g. ENGINE_NOT_AVAILABLE, ILLEGAL_STATE_TRANSITION"),
			"advice":  str("what to do about it"),
		}, "code", "message")}, "error"),
		"Organization":     object(obj{"id": id24(""), "name": str(""), "createdAt": dateTime("")}, "id", "name", "createdAt"),
		"OrganizationList": listOf("Organization"),
		"Project":          object(obj{"id": id24(""), "orgId": id24(""), "name": str(""), "createdAt": dateTime("")}, "id", "orgId", "name", "createdAt"),
		"ProjectList":      listOf("Project"),
		"ProjectRename":    object(obj{"name": str("at most 64 characters, unique in the organization")}, "name"),
		"ProjectInput":     object(obj{"name": str("at most 64 characters, unique in the organization"), "orgId": id24("defaults to the key's organization")}, "name"),
		"APIKey": object(obj{"id": id24(""), "orgId": id24(""), "projectId": id24("for GROUP_* roles"), "publicKey": str(""),
			"role": enum(enumOf(ferry.Roles)...), "description": str(""), "createdAt": dateTime("")}, "id", "orgId", "publicKey", "role", "createdAt"),
		"APIKeyList":    listOf("APIKey"),
		"APIKeyInput":   object(obj{"role": enum(enumOf(ferry.Roles)...), "projectId": id24("required for GROUP_* roles"), "description": str("")}, "role"),
		"APIKeyCreated": obj{"allOf": []any{ref("APIKey"), object(obj{"privateKey": str("shown only in this answer; only hashes are stored")}, "privateKey")}},
		"Endpoint":      object(endpointProps(false), "kind", "addrs", "hasPassword"),
		"EndpointList":  listOf("Endpoint"),
		"EndpointInput": object(endpointProps(true)),
		"Modes":         object(obj{"schema": boolean(""), "full": boolean(""), "incremental": boolean(""), "reverseIncremental": boolean(""), "verify": boolean("")}),
		"Filters": object(obj{"includeDbs": array(str("")), "excludeDbs": array(str("")), "includeTables": array(str("db.table or db.collection, globs allowed")),
			"excludeTables": array(str("")), "includeKeys": array(str("Redis key prefixes or regexes")), "excludeKeys": array(str("")), "renames": strMap("source name to target name")}),
		"Options": object(obj{"bandwidthLimitMb": integer(""), "resumeMode": enum("auto", "manual"), "filters": ref("Filters"),
			"conflict": enum("fail", "replace", "skip"), "dropTarget": boolean(""), "parallelism": integer(""),
			"cutoverLagSeconds":         integer("readyForCutover once the lag stays at or below it (default 5)"),
			"releaseSourceAfterCutover": boolean("lift the write block cutover put on the source when the job completes (default: it stays until release-source)"), "extra": strMap("engine-specific settings")}),
		"Counters": object(obj{"done": integer(""), "total": integer(""), "bytes": integer(""), "bytesTotal": integer(""), "ops": integer("changes applied"),
			"errors": integer(""), "missing": integer(""), "extra": integer(""), "different": integer(""), "lagBytes": integer(""),
			"ratePerSec": number(""), "unit": str("keys, rows or documents")}, "done", "total"),
		"Step": object(obj{"name": enum(steps...), "state": enum("pending", "running", "done", "failed"), "progress": number("percent 0..100"),
			"counters": ref("Counters"), "hasCheckpoint": boolean(""), "checkpointTime": dateTime("source time of the last applied change"),
			"message": str(""), "startedAt": dateTime(""), "finishedAt": dateTime("")}, "name", "state", "progress", "counters", "hasCheckpoint"),
		"Lease": object(obj{"agentId": str(""), "expiresAt": dateTime("")}),
		"Migration": object(obj{
			"id": id24(""), "projectId": id24(""), "name": str(""), "description": str(""), "engine": enum(kinds...),
			"source": ref("Endpoint"), "target": ref("Endpoint"), "modes": ref("Modes"), "options": ref("Options"),
			"importance": enum("HIGH", "MEDIUM", "LOW", "IGNORE"), "dialect": str("the API that created the job"), "labels": strMap(""),
			"state": enum(stateNames...), "currentStep": enum(steps...), "progress": number("overall percent of the copy steps"),
			"steps": array(ref("Step")), "lagSeconds": integer("set only while a sync step runs"), "readyForCutover": boolean(""),
			"readiness": ref("Readiness"), "cutover": ref("Cutover"),
			"cutoverDeadline": dateTime("the job expires if nobody cuts over before it"), "error": str(""),
			"hosts": array(str("agents that have run the job, newest last")), "lease": ref("Lease"), "attempts": integer(""),
			"createdAt": dateTime(""), "updatedAt": dateTime(""), "startedAt": dateTime(""), "finishedAt": dateTime(""), "releasedAt": dateTime(""),
			"version": integer(""),
		}, "id", "projectId", "name", "engine", "source", "target", "modes", "options", "state", "progress", "steps", "readyForCutover", "readiness", "hosts", "attempts", "createdAt", "updatedAt", "version"),
		"MigrationList": listOf("Migration"),
		"Readiness": object(obj{"ready": boolean("cutover can happen now"), "reasons": array(object(obj{"code": enum(ferry.ReasonNoIncremental, ferry.ReasonNotStarted,
			ferry.ReasonPaused, ferry.ReasonFailed, ferry.ReasonRetrying, ferry.ReasonCuttingOver, ferry.ReasonCutOver, ferry.ReasonEnded, ferry.ReasonNotYetIncremental,
			ferry.ReasonNoAgent, ferry.ReasonLagUnknown, ferry.ReasonLagHigh, ferry.ReasonBacklog), "message": str(""), "advice": str("")}, "code", "message"))}, "ready", "reasons"),
		"Cutover": object(obj{"requestedAt": dateTime(""), "sourceWriteBlock": enum(ferry.WriteBlockClientPause, ferry.WriteBlockReadOnly, ferry.WriteBlockNone),
			"sourceBlockedAt": dateTime(""), "sourceBlockedUntil": dateTime("when a Redis pause ends by itself"), "sourceReleasedAt": dateTime("release-source"),
			"sourcePosition": str("the source's final position"), "drainedPosition": str("the position the target holds every change up to"), "drainedAt": dateTime(""),
			"verification": object(obj{"state": enum("done", "failed"), "checked": integer(""), "missing": integer(""), "extra": integer(""), "different": integer(""),
				"unit": str(""), "message": str(""), "at": dateTime("")}, "state", "checked", "missing", "extra", "different"),
			"notes": array(str("")), "sourceState": enum(ferry.SourceWritable, ferry.SourceWritePaused, ferry.SourceReadOnly), "summary": str("")}, "sourceState"),
		"MigrationInput": object(obj{
			"name": str(""), "description": str(""), "engine": withDesc(enum(kinds...), "defaults to target.kind"),
			"source": ref("EndpointInput"), "target": ref("EndpointInput"), "modes": withDesc(ref("Modes"), "defaults to full + incremental"),
			"options": ref("Options"), "importance": enum("HIGH", "MEDIUM", "LOW", "IGNORE"), "labels": strMap(""),
			"start": boolean("queue the job at once (default false: it waits in state created for .../start)"),
		}, "source", "target"),
		"ExtendCutoverInput": object(obj{"hours": obj{"type": "integer", "minimum": 1, "maximum": 120}}, "hours"),
		"Validation": object(obj{"id": id24(""), "projectId": id24(""), "sourceGroupId": str(""), "status": enum("PENDING", "SUCCESS", "FAILED"),
			"errors": array(str("")), "createdAt": dateTime("")}, "id", "projectId", "status", "createdAt"),
		"RetentionPolicy": object(obj{"units": enum("DAYS", "WEEKS", "MONTHS"), "value": integer(""), "lastModifiedDate": dateTime("")}, "units", "value"),
		"PipelineSource": object(obj{"type": enum(ferry.SourcePeriodic, ferry.SourceOnDemand), "clusterName": str("a registered endpoint's name"),
			"databaseName": str(""), "collectionName": str(""), "groupId": str(""), "policyItemId": str("")}, "type", "clusterName", "databaseName", "collectionName"),
		"PipelineSink": object(obj{"type": enum("DLS"), "metadataProvider": str(""), "metadataRegion": str(""),
			"partitionFields": array(object(obj{"fieldName": str(""), "order": integer("")}, "fieldName", "order")),
			"location":        str("a local directory or s3://bucket/prefix")}),
		"Transformation": object(obj{"field": str(""), "type": enum("EXCLUDE")}, "field", "type"),
		"Pipeline": object(obj{"id": id24(""), "projectId": id24(""), "name": str(""), "state": enum(ferry.PipelineActive, ferry.PipelinePaused),
			"source": ref("PipelineSource"), "sink": ref("PipelineSink"), "transformations": array(ref("Transformation")),
			"backupFrequencyType": enum(ferry.Frequencies...), "datasetRetentionPolicy": ref("RetentionPolicy"), "nextRunAt": dateTime(""),
			"createdAt": dateTime(""), "updatedAt": dateTime(""), "version": integer("")}, "id", "projectId", "name", "state", "source", "sink"),
		"PipelineList": listOf("Pipeline"),
		"PipelineInput": object(obj{"name": str("^[^/\\\\ \"$]{1,64}$"), "source": ref("PipelineSource"), "sink": ref("PipelineSink"),
			"transformations": array(ref("Transformation")), "backupFrequencyType": enum(ferry.Frequencies...), "datasetRetentionPolicy": ref("RetentionPolicy")}, "name", "source"),
		"PipelinePatch": object(obj{"name": str("cannot change"), "source": ref("PipelineSource"), "sink": ref("PipelineSink"),
			"transformations": array(ref("Transformation")), "backupFrequencyType": enum(ferry.Frequencies...), "datasetRetentionPolicy": ref("RetentionPolicy")}),
		"TriggerInput": object(obj{"snapshotId": id24(""), "datasetRetentionPolicy": ref("RetentionPolicy")}),
		"PipelineRun": object(obj{"id": id24(""), "projectId": id24(""), "pipelineId": id24(""), "pipelineName": str(""),
			"state": enum(ferry.RunPending, ferry.RunInProgress, ferry.RunDone, ferry.RunFailed, ferry.RunDatasetDeleted),
			"phase": enum(ferry.PhaseSnapshot, ferry.PhaseExport, ferry.PhaseIngestion), "backupFrequencyType": str(""), "snapshotId": str(""),
			"datasetName": str(""), "datasetRetentionPolicy": ref("RetentionPolicy"), "scheduledDeletionDate": dateTime(""),
			"stats": object(obj{"bytesExported": integer(""), "numDocs": integer("")}), "error": str(""), "hosts": array(str("")),
			"lease": ref("Lease"), "createdAt": dateTime(""), "updatedAt": dateTime(""), "version": integer("")}, "id", "pipelineId", "state", "phase", "stats"),
		"PipelineRunList": listOf("PipelineRun"),
		"Agent":           object(obj{"id": str(""), "hostname": str(""), "version": str(""), "startedAt": dateTime(""), "lastSeen": dateTime("")}, "id", "hostname", "lastSeen"),
		"AgentList":       listOf("Agent"),
	}
}

var pathParamRe = regexp.MustCompile(`\{([A-Za-z]+)\}`)

var paramDocs = map[string]obj{
	"orgId":        {"name": "orgId", "in": "path", "required": true, "schema": id24("")},
	"keyId":        {"name": "keyId", "in": "path", "required": true, "schema": id24("")},
	"projectId":    {"name": "projectId", "in": "path", "required": true, "schema": id24("")},
	"endpoint":     {"name": "endpoint", "in": "path", "required": true, "schema": str("endpoint id or name")},
	"migrationId":  {"name": "migrationId", "in": "path", "required": true, "schema": id24("")},
	"validationId": {"name": "validationId", "in": "path", "required": true, "schema": id24("")},
	"pipelineName": {"name": "pipelineName", "in": "path", "required": true, "schema": str("")},
	"runId":        {"name": "runId", "in": "path", "required": true, "schema": id24("")},
	"offset":       {"name": "offset", "in": "query", "schema": obj{"type": "integer", "minimum": 0, "default": 0}},
	"limit":        {"name": "limit", "in": "query", "schema": obj{"type": "integer", "minimum": 1, "maximum": MaxLimit, "default": DefaultLimit}},
	"orgId.query":  {"name": "orgId", "in": "query", "schema": id24("only this organization's projects")},
	"state":        {"name": "state", "in": "query", "description": "comma-separated or repeated states", "schema": array(enum(enumOf(states)...)), "style": "form", "explode": true},
	"engine":       {"name": "engine", "in": "query", "schema": enum(enumOf(ferry.Kinds)...)},
	"dialect":      {"name": "dialect", "in": "query", "schema": enum("native", "atlas", "oms", "dcs")},
}

func buildOpenAPI() obj {
	paths := obj{}
	for _, o := range operations() {
		var params []any
		for _, m := range pathParamRe.FindAllStringSubmatch(o.path, -1) {
			params = append(params, obj{"$ref": "#/components/parameters/" + m[1]})
		}
		for _, q := range o.query {
			name := q
			if q == "orgId" {
				name = "orgId.query"
			}
			params = append(params, obj{"$ref": "#/components/parameters/" + name})
		}
		op := obj{
			"tags":        []string{o.tag},
			"summary":     o.summary,
			"operationId": operationID(o),
		}
		if len(params) > 0 {
			op["parameters"] = params
		}
		if o.body != "" {
			op["requestBody"] = obj{"required": !o.bodyOptional, "content": obj{"application/json": obj{"schema": ref(o.body)}}}
		}
		responses := obj{}
		st := strconv.Itoa(o.status)
		switch {
		case o.resp != "":
			responses[st] = obj{"description": http.StatusText(o.status), "content": obj{"application/json": obj{"schema": ref(o.resp)}}}
		case o.status == http.StatusNoContent:
			responses[st] = obj{"description": http.StatusText(o.status)}
		default:
			responses[st] = obj{"description": "this document", "content": obj{"application/json": obj{"schema": obj{"type": "object"}}}}
		}
		for _, e := range o.errors {
			responses[strconv.Itoa(e)] = obj{"$ref": "#/components/responses/" + strconv.Itoa(e)}
		}
		responses["500"] = obj{"$ref": "#/components/responses/500"}
		op["responses"] = responses
		if o.public {
			op["security"] = []any{}
		}
		item, _ := paths[o.path].(obj)
		if item == nil {
			item = obj{}
			paths[o.path] = item
		}
		item[strings.ToLower(o.method)] = op
	}
	errResp := func(desc string) obj {
		return obj{"description": desc, "content": obj{"application/json": obj{"schema": ref("Error")}}}
	}
	return obj{
		"openapi": "3.1.0",
		"info": obj{
			"title":   "ferry native API",
			"version": ferry.Version,
			"description": "ferry's own JSON API over its whole model: organizations, projects, API keys, endpoints, " +
				"migrations of every engine with their steps and checkpoints, pipelines and runs, validations and agents. " +
				"Authenticate with an API key pair (HTTP Basic or Digest, user = public key, password = private key) or a bearer token. " +
				"Lists take ?offset=&limit= and answer {items, total, offset, limit}. Errors answer {\"error\":{code, message, field, reason, advice}}.",
		},
		"servers":  []any{obj{"url": "/"}},
		"security": []any{obj{"basicAuth": []string{}}, obj{"digestAuth": []string{}}, obj{"bearerAuth": []string{}}},
		"paths":    paths,
		"components": obj{
			"securitySchemes": obj{
				"basicAuth":  obj{"type": "http", "scheme": "basic", "description": "public key : private key"},
				"digestAuth": obj{"type": "http", "scheme": "digest", "description": "public key : private key, realm ferry"},
				"bearerAuth": obj{"type": "http", "scheme": "bearer", "description": "a token issued by POST /api/oauth/token or POST /v3/auth/tokens"},
			},
			"parameters": paramDocs,
			"schemas":    schemas(),
			"responses": obj{
				"400": errResp("invalid request (code invalid)"),
				"401": errResp("missing or bad credentials (code unauthorized)"),
				"403": errResp("the key's role does not allow it (code forbidden)"),
				"404": errResp("no such resource, or not visible to the caller (code not_found)"),
				"409": errResp("illegal state transition or duplicate name (code conflict)"),
				"500": errResp("internal error (code internal)"),
			},
		},
	}
}

func operationID(o opDoc) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(o.method))
	up := true
	for _, c := range strings.TrimPrefix(o.path, "/api/v1/") {
		switch {
		case c == '/' || c == '-' || c == '.' || c == '{' || c == '}':
			up = true
		case up:
			b.WriteString(strings.ToUpper(string(c)))
			up = false
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

var (
	openAPIOnce  sync.Once
	openAPIBytes []byte
)

func openAPIJSON() []byte {
	openAPIOnce.Do(func() {
		b, err := json.MarshalIndent(buildOpenAPI(), "", "  ")
		if err != nil {
			panic("native: openapi document: " + err.Error())
		}
		openAPIBytes = append(b, '\n')
	})
	return openAPIBytes
}
