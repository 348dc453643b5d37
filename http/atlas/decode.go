package atlas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"sort"
	"strings"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/http/httpauth"
)

// maxBody bounds request bodies.
const maxBody = 1 << 20

var errMalformed = &ferry.Error{Code: ferry.EINVALID, Reason: "INVALID_JSON", Message: "Received JSON is malformed."}

// readBody reads a request body, bounded.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	var big *http.MaxBytesError
	if errors.As(err, &big) || len(b) > maxBody {
		return nil, httpauth.TooLarge(maxBody)
	}
	if err != nil {
		return nil, &ferry.Error{Code: ferry.EINVALID, Reason: "INVALID_JSON", Message: "The request body could not be read."}
	}
	return b, nil
}

// decodeStrict decodes a JSON object into dst (a pointer to a struct),
// rejecting malformed JSON (INVALID_JSON), attributes dst does not know,
// matched case-sensitively (INVALID_ATTRIBUTE, naming the attribute's
// path), and values of the wrong type (INVALID_JSON_ATTRIBUTE).
func decodeStrict(body []byte, dst any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errMalformed
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return errMalformed
	}
	if _, err := dec.Token(); err != io.EOF {
		return errMalformed
	}
	if _, ok := raw.(map[string]any); !ok {
		return &ferry.Error{Code: ferry.EINVALID, Reason: "INVALID_JSON", Message: "Received JSON is malformed: the body must be a JSON object."}
	}
	if path, found := unknownAttribute(raw, reflect.TypeOf(dst), ""); found {
		if path == "" {
			path = `""` // the attribute with the empty name
		}
		return fieldErr("INVALID_ATTRIBUTE", path, "Invalid attribute %s specified.", path)
	}
	if err := json.Unmarshal(body, dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return fieldErr("INVALID_JSON_ATTRIBUTE", te.Field, "Received JSON for the %s attribute does not match expected format (want %s).", te.Field, te.Type)
		}
		return errMalformed
	}
	return nil
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// unknownAttribute returns the path of the first attribute of v (decoded
// JSON) that type t has no field for, and whether there is one (the path
// of an attribute named "" at the top level is "").
func unknownAttribute(v any, t reflect.Type, prefix string) (string, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return "", false
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return "", false
		}
		fields := jsonFields(t)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			path := join(prefix, k)
			ft, ok := fields[k]
			if !ok {
				return path, true
			}
			if p, found := unknownAttribute(m[k], ft, path); found {
				return p, true
			}
		}
	case reflect.Slice, reflect.Array:
		arr, ok := v.([]any)
		if !ok {
			return "", false
		}
		for i, e := range arr {
			if p, found := unknownAttribute(e, t.Elem(), fmt.Sprintf("%s[%d]", prefix, i)); found {
				return p, true
			}
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return "", false
		}
		for k, e := range m {
			if p, found := unknownAttribute(e, t.Elem(), join(prefix, k)); found {
				return p, true
			}
		}
	}
	return "", false
}

func join(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

// jsonFields maps a struct's JSON attribute names to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := f.Name
		if tag, ok := f.Tag.Lookup("json"); ok {
			if tag == "-" {
				continue
			}
			if n, _, _ := strings.Cut(tag, ","); n != "" {
				name = n
			}
		}
		out[name] = f.Type
	}
	return out
}
