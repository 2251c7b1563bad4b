package train

import (
	"strings"
	"testing"
	"time"
)

// init_from takes a released model's name like every other model argument;
// offline with nothing cached it fails at once with the download command.
func TestInitFromReleasedNameOffline(t *testing.T) {
	t.Setenv("CLIPCAP_CACHE", t.TempDir())
	t.Setenv("HF_HOME", t.TempDir())
	t.Setenv("HF_HUB_OFFLINE", "1")
	start := time.Now()
	_, err := Config{InitFrom: "clipcap-coco"}.initDir()
	if el := time.Since(start); el > time.Second {
		t.Errorf("took %v", el)
	}
	if err == nil || !strings.Contains(err.Error(), "init_from") || !strings.Contains(err.Error(), "run: clipcap download clipcap-coco") {
		t.Fatalf("got %v, want an init_from error with the download command", err)
	}
}
