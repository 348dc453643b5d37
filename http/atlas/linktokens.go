package atlas

import (
	"net/http"
)

// targetOrgRequest is Atlas's TargetOrgRequest.
type targetOrgRequest struct {
	AccessListIps *[]string `json:"accessListIps"`
}

// availableProjectView is Atlas's LiveImportAvailableProject.
type availableProjectView struct {
	Deployments    []deploymentView `json:"deployments"`
	MigrationHosts []string         `json:"migrationHosts"`
	Name           string           `json:"name"`
	ProjectID      string           `json:"projectId"`
}

// deploymentView is Atlas's AvailableClustersDeployment for a registered
// MongoDB endpoint. ferry does not connect to list them, so the server's
// versions are not known here (empty) and sharded is not detected (false).
type deploymentView struct {
	ClusterID                   string `json:"clusterId"`
	FeatureCompatibilityVersion string `json:"featureCompatibilityVersion"`
	Managed                     bool   `json:"managed"`
	MongoDBVersion              string `json:"mongoDBVersion"`
	Name                        string `json:"name"`
	Sharded                     bool   `json:"sharded"`
	TLSEnabled                  bool   `json:"tlsEnabled"`
}

// createLinkToken: POST /orgs/{orgId}/liveMigrations/linkTokens.
func (h *handler) createLinkToken(r *http.Request) (int, any, error) {
	orgID, err := pathID(r, "orgId", "INVALID_ORG_ID")
	if err != nil {
		return 0, nil, err
	}
	body, err := readBody(r)
	if err != nil {
		return 0, nil, err
	}
	var b targetOrgRequest
	if len(body) > 0 {
		if err := decodeStrict(body, &b); err != nil {
			return 0, nil, err
		}
	}
	var ips []string
	if b.AccessListIps != nil {
		ips = *b.AccessListIps
	}
	tok, err := h.svc.CreateLinkToken(r.Context(), orgID, ips)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]string{"linkToken": tok}, nil
}

// deleteLinkTokens: DELETE /orgs/{orgId}/liveMigrations/linkTokens.
func (h *handler) deleteLinkTokens(r *http.Request) (int, any, error) {
	orgID, err := pathID(r, "orgId", "INVALID_ORG_ID")
	if err != nil {
		return 0, nil, err
	}
	if err := h.svc.DeleteLinkTokens(r.Context(), orgID); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

// availableProjects: GET /orgs/{orgId}/liveMigrations/availableProjects.
func (h *handler) availableProjects(r *http.Request) (int, any, error) {
	orgID, err := pathID(r, "orgId", "INVALID_ORG_ID")
	if err != nil {
		return 0, nil, err
	}
	aps, err := h.svc.AvailableProjects(r.Context(), orgID)
	if err != nil {
		return 0, nil, err
	}
	out := make([]availableProjectView, 0, len(aps))
	for _, ap := range aps {
		v := availableProjectView{Deployments: []deploymentView{}, MigrationHosts: append([]string{}, ap.Hosts...), Name: ap.Project.Name, ProjectID: ap.Project.ID}
		for _, e := range ap.Endpoints {
			v.Deployments = append(v.Deployments, deploymentView{ClusterID: e.ID, Name: e.Name, TLSEnabled: e.TLS})
		}
		out = append(out, v)
	}
	return http.StatusOK, out, nil
}
