package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

// Offline, naming a released model that is not cached fails at once, in
// every command that takes --model, with the command that fetches it.
func TestReleasedModelOfflineFailsFast(t *testing.T) {
	t.Setenv("CLIPCAP_CACHE", t.TempDir())
	t.Setenv("HF_HOME", t.TempDir())
	t.Setenv("HF_HUB_OFFLINE", "1")
	out := t.TempDir()
	for _, args := range [][]string{
		{"caption", "--model", "clipcap-coco", "photo.jpg"},
		{"export", "--model", "clipcap-coco-transformer", "--out", out + "/x.pt"},
	} {
		start := time.Now()
		var err error
		switch args[0] {
		case "caption":
			err = runCaption(args[1:])
		case "export":
			err = runExport(args[1:])
		}
		if el := time.Since(start); el > time.Second {
			t.Errorf("%v took %v", args, el)
		}
		want := "run: clipcap download " + args[2]
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: got %v, want %q", args, err, want)
		}
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Errorf("export wrote %v", entries)
	}
}
