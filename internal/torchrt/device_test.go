package torchrt

import (
	"testing"

	"github.com/sugarme/gotch"
)

func TestParseDevice(t *testing.T) {
	if d, err := ParseDevice("cpu"); err != nil || d != gotch.CPU {
		t.Fatalf("cpu: %v %v", d, err)
	}
	for _, s := range []string{"tpu", "cuda:x", "cuda:-1", "cuda:99"} {
		if _, err := ParseDevice(s); err == nil {
			t.Errorf("%q: no error", s)
		}
	}
}
