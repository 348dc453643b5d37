package dcs

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/http/httpauth"
)

// tokenRequest is Huawei IAM's "obtain a user token by password" body:
// user name = an API key's public key, password = its private key. The
// domain is accepted and ignored (a ferry key belongs to one organization);
// a scope project, when given (by id, by name, or by region name: see
// iam_region.go), must be one the key can read.
type tokenRequest struct {
	Auth struct {
		Identity struct {
			Methods  []string `json:"methods"`
			Password struct {
				User struct {
					Name     string `json:"name"`
					Password string `json:"password"`
					Domain   struct {
						Name string `json:"name"`
						ID   string `json:"id"`
					} `json:"domain"`
				} `json:"user"`
			} `json:"password"`
		} `json:"identity"`
		Scope struct {
			Project struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"project"`
		} `json:"scope"`
	} `json:"auth"`
}

// tokenResponse is IAM's token body, reduced to what ferry knows.
type tokenResponse struct {
	Token tokenView `json:"token"`
}

type tokenView struct {
	Methods   []string     `json:"methods"`
	ExpiresAt string       `json:"expires_at"`
	IssuedAt  string       `json:"issued_at"`
	User      tokenUser    `json:"user"`
	Roles     []nameID     `json:"roles"`
	Project   *projectView `json:"project,omitempty"`
	Catalog   []any        `json:"catalog"`
}

type tokenUser struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Domain nameID `json:"domain"`
}

type nameID struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type projectView struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Domain nameID `json:"domain"`
}

// iamTime is IAM's timestamp format.
const iamTime = "2006-01-02T15:04:05.000000Z"

// parseTokenRequest decodes and checks a token body (the fuzzed decoder).
func parseTokenRequest(body []byte) (*tokenRequest, error) {
	var req tokenRequest
	if err := decodeBytes(body, &req); err != nil {
		return nil, err
	}
	id := &req.Auth.Identity
	if !slices.Contains(id.Methods, "password") {
		return nil, ferry.FieldError("auth.identity.methods", "must contain \"password\" (the only method ferry supports).")
	}
	if id.Password.User.Name == "" || id.Password.User.Password == "" {
		return nil, ferry.FieldError("auth.identity.password.user", "name (the API public key) and password (the private key) are mandatory.")
	}
	if p := req.Auth.Scope.Project.ID; p != "" && !ferry.ValidID(p) {
		return nil, &ferry.Error{Code: ferry.EINVALID, Field: "auth.scope.project.id", Reason: "INVALID_PROJECT_ID", Message: fmt.Sprintf("Invalid project ID format: %q is not a 24-hex ferry project id.", p)}
	}
	return &req, nil
}

// tokens issues an X-Auth-Token (IAM's POST /v3/auth/tokens): 201 with the
// token in X-Subject-Token.
func (h *handler) tokens(w http.ResponseWriter, r *http.Request) {
	defer h.recoverPanic(w, r)
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.Contains(strings.ToLower(ct), "json") {
		h.writeError(w, r, &ferry.Error{Code: ferry.EINVALID, Reason: "UNSUPPORTED_MEDIA_TYPE", Message: fmt.Sprintf("The request body must be JSON (Content-Type: application/json), not %q.", ct)})
		return
	}
	body, err := httpauth.ReadBody(w, r, MaxBodyBytes)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	req, err := parseTokenRequest(body)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	user := req.Auth.Identity.Password.User
	ctx := r.Context()
	p, err := h.auth.CheckKeyPair(w, r, user.Name, user.Password)
	if err != nil {
		if ferry.ErrorCode(err) == ferry.EUNAUTHORIZED {
			err = &ferry.Error{Code: ferry.EUNAUTHORIZED, Message: "The username or password is wrong."}
		}
		h.writeError(w, r, err)
		return
	}
	pctx := ferry.WithPrincipal(ctx, p)
	var proj *ferry.Project
	switch {
	case req.Auth.Scope.Project.ID != "":
		if proj, err = h.svc.GetProject(pctx, req.Auth.Scope.Project.ID); err != nil {
			h.writeError(w, r, err)
			return
		}
	case req.Auth.Scope.Project.Name != "":
		if proj, err = h.projectByNameOrRegion(pctx, p, req.Auth.Scope.Project.Name); err != nil {
			h.writeError(w, r, err)
			return
		}
	case p.ProjectID != "":
		if proj, err = h.svc.GetProject(pctx, p.ProjectID); err != nil {
			h.writeError(w, r, err)
			return
		}
	}
	scope := "" // a project-scoped token acts on that project only
	if proj != nil && (req.Auth.Scope.Project.ID != "" || req.Auth.Scope.Project.Name != "") {
		scope = proj.ID
	}
	raw, tok, err := h.svc.IssueScopedToken(ctx, user.Name, user.Password, scope)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	domain := nameID{ID: p.OrgID, Name: p.OrgID}
	view := tokenView{
		Methods:   []string{"password"},
		ExpiresAt: tok.ExpiresAt.UTC().Format(iamTime),
		IssuedAt:  tok.CreatedAt.UTC().Format(iamTime),
		User:      tokenUser{ID: p.KeyID, Name: p.PublicKey, Domain: domain},
		Roles:     []nameID{{ID: string(p.Role), Name: string(p.Role)}},
		Catalog:   []any{},
	}
	if proj != nil {
		view.Project = &projectView{ID: proj.ID, Name: proj.Name, Domain: domain}
	}
	w.Header().Set(SubjectTokenHeader, raw)
	writeJSON(w, http.StatusCreated, tokenResponse{Token: view})
}
