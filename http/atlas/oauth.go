package atlas

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/http/httpauth"
)

// tokenResponse is the RFC 6749 access token response Atlas answers.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	TokenType   string `json:"token_type"`
}

// oauthError is the RFC 6749 error body of the OAuth endpoints.
type oauthError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
}

func writeOAuth(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// clientCredentials returns the client id and secret of an OAuth request:
// HTTP Basic (what the Atlas SDK sends, URL-encoded per RFC 6749 §2.3.1) or
// the client_id/client_secret form fields.
func clientCredentials(r *http.Request) (string, string, bool) {
	if id, secret, ok := r.BasicAuth(); ok {
		if u, err := url.QueryUnescape(id); err == nil {
			id = u
		}
		if u, err := url.QueryUnescape(secret); err == nil {
			secret = u
		}
		return id, secret, id != "" && secret != ""
	}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	return id, secret, id != "" && secret != ""
}

func (h *handler) parseOAuthForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(ct), "application/x-www-form-urlencoded") {
		writeOAuth(w, http.StatusBadRequest, oauthError{Error: "invalid_request", ErrorDescription: "the body must be application/x-www-form-urlencoded"})
		return false
	}
	if err := r.ParseForm(); err != nil {
		var big *http.MaxBytesError
		if errors.As(err, &big) {
			writeOAuth(w, http.StatusRequestEntityTooLarge, oauthError{Error: "invalid_request", ErrorDescription: "the body is larger than 65536 bytes"})
			return false
		}
		writeOAuth(w, http.StatusBadRequest, oauthError{Error: "invalid_request", ErrorDescription: "malformed form body"})
		return false
	}
	return true
}

func (h *handler) invalidClient(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Basic realm="`+ferry.DigestRealm+`"`)
	writeOAuth(w, http.StatusUnauthorized, oauthError{Error: "invalid_client", ErrorDescription: "client authentication failed"})
}

// checkClient authenticates the client under the rate limits (a wrong
// secret counts against the address's failed-authentication limit): it
// answers 401 invalid_client or 429 and reports false when the request
// must stop.
func (h *handler) checkClient(w http.ResponseWriter, r *http.Request, id, secret string) bool {
	_, err := h.auth.CheckKeyPair(w, r, id, secret)
	err = httpauth.ClientGone(r, err)
	switch ferry.ErrorCode(err) {
	case "":
		return true
	case ferry.EUNAUTHORIZED:
		h.invalidClient(w)
	case ferry.ERATELIMIT:
		writeOAuth(w, http.StatusTooManyRequests, oauthError{Error: "temporarily_unavailable", ErrorDescription: ferry.ErrorMessage(err)})
	case ferry.ECANCELED:
		writeOAuth(w, httpauth.StatusClientClosedRequest, oauthError{Error: "server_error", ErrorDescription: "the client closed the request"})
	default:
		h.logger.Error("oauth client authentication", "err", err)
		writeOAuth(w, http.StatusInternalServerError, oauthError{Error: "server_error"})
	}
	return false
}

// token serves POST /api/oauth/token: the client credentials grant, with an
// API key's public key as client id and its private key as client secret.
func (h *handler) token(w http.ResponseWriter, r *http.Request) {
	if !h.parseOAuthForm(w, r) {
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		writeOAuth(w, http.StatusBadRequest, oauthError{Error: "unsupported_grant_type", ErrorDescription: "only grant_type=client_credentials is supported"})
		return
	}
	id, secret, ok := clientCredentials(r)
	if !ok {
		h.invalidClient(w)
		return
	}
	if !h.checkClient(w, r, id, secret) {
		return
	}
	raw, t, err := h.svc.IssueToken(r.Context(), id, secret)
	if err != nil {
		if ferry.ErrorCode(err) == ferry.EUNAUTHORIZED {
			h.invalidClient(w)
			return
		}
		h.logger.Error("issue oauth token", "err", err)
		writeOAuth(w, http.StatusInternalServerError, oauthError{Error: "server_error"})
		return
	}
	ttl := int64(t.ExpiresAt.Sub(h.svc.Now()).Round(time.Second) / time.Second)
	writeOAuth(w, http.StatusOK, tokenResponse{AccessToken: raw, TokenType: "Bearer", ExpiresIn: ttl})
}

// revoke serves POST /api/oauth/revoke (RFC 7009): the client revokes one
// of its own tokens. As RFC 7009 asks, an unknown token is not an error.
func (h *handler) revoke(w http.ResponseWriter, r *http.Request) {
	if !h.parseOAuthForm(w, r) {
		return
	}
	id, secret, ok := clientCredentials(r)
	if !ok {
		h.invalidClient(w)
		return
	}
	if !h.checkClient(w, r, id, secret) {
		return
	}
	tok := r.PostForm.Get("token")
	if tok == "" {
		writeOAuth(w, http.StatusBadRequest, oauthError{Error: "invalid_request", ErrorDescription: "token is required"})
		return
	}
	if err := h.svc.RevokeToken(r.Context(), id, secret, tok); err != nil {
		switch ferry.ErrorCode(err) {
		case ferry.EUNAUTHORIZED:
			h.invalidClient(w)
		case ferry.EFORBIDDEN:
			writeOAuth(w, http.StatusBadRequest, oauthError{Error: "unauthorized_client", ErrorDescription: ferry.ErrorMessage(err)})
		default:
			h.logger.Error("revoke oauth token", "err", err)
			writeOAuth(w, http.StatusInternalServerError, oauthError{Error: "server_error"})
		}
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}
