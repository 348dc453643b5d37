package enginetest

import (
	"encoding/json"
	"testing"

	"github.com/ferrymigrate/ferry"
)

func TestCheckpointAndNumber(t *testing.T) {
	tests := []struct {
		raw  string
		key  string
		want float64
		nil  bool
	}{
		{raw: "", key: "resumes", nil: true},
		{raw: `{"resumes": 2, "ops": 10}`, key: "resumes", want: 2},
		{raw: `{"resumes": "2"}`, key: "resumes", want: 0},
		{raw: `{"ops": 10}`, key: "resumes", want: 0},
	}
	for _, tc := range tests {
		cp := Checkpoint(t, &ferry.Step{Checkpoint: json.RawMessage(tc.raw)})
		if (cp == nil) != tc.nil {
			t.Errorf("%q: checkpoint %v", tc.raw, cp)
		}
		if got := number(cp, tc.key); got != tc.want {
			t.Errorf("%q: number(%s) = %v, want %v", tc.raw, tc.key, got, tc.want)
		}
	}
}
