package doctor

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionLine(t *testing.T) {
	info := &debug.BuildInfo{GoVersion: "go1.99", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "true"}, {Key: "vcs.time", Value: "2024-01-02T03:04:05Z"},
		{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "amd64"}}}
	if got, want := versionLine(info), "clipcap v1.2.3, abc123 (modified) 2024-01-02T03:04:05Z, go1.99 linux/amd64"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	info.Settings = nil
	if got := versionLine(info); !strings.Contains(got, "unknown revision") {
		t.Errorf("without VCS info: %q", got)
	}
}

func TestVersion(t *testing.T) {
	var b strings.Builder
	if err := Version(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "clipcap ") {
		t.Errorf("version output %q", b.String())
	}
}
