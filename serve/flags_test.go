package serve

import (
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/clipcap/clipcap/internal/flagtest"
)

func parseServeFlags(t *testing.T, args ...string) Config {
	t.Helper()
	var f Flags
	flagtest.Parse(t, f.RegisterFlags, args...)
	if f.Addr == "" {
		t.Error("no default --addr")
	}
	return f.Parsed()
}

// With no flags the server runs with Config's defaults: each flag's default
// is either that default or zero (which withDefaults turns into it).
func TestFlagDefaultsAreConfigDefaults(t *testing.T) {
	t.Setenv("CLIPCAP_API_KEY", "")
	got := parseServeFlags(t).withDefaults()
	want := Config{}.withDefaults()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("flag defaults give\n%+v\nConfig's defaults are\n%+v", got, want)
	}
	if want.DecodeSlots != runtime.GOMAXPROCS(0) {
		t.Errorf("decode slots default %d", want.DecodeSlots)
	}
}

func TestFlagsSetConfig(t *testing.T) {
	t.Setenv("CLIPCAP_API_KEY", "from-env")
	c := parseServeFlags(t, "--max-batch", "3", "--max-wait", "5ms", "--timeout", "2s", "--max-pixels", "100",
		"--allowed-hosts", " a.example , ,b.example", "--allow-fetch", "--max-tokens", "20")
	if c.MaxBatch != 3 || c.MaxWait != 5*time.Millisecond || c.Timeout != 2*time.Second || c.MaxPixels != 100 ||
		!c.AllowFetch || c.MaxTokens != 20 || c.APIKey != "from-env" {
		t.Errorf("config %+v", c)
	}
	if !reflect.DeepEqual(c.AllowedHosts, []string{"a.example", "b.example"}) {
		t.Errorf("allowed hosts %q", c.AllowedHosts)
	}
	if c := parseServeFlags(t, "--api-key", "k"); c.APIKey != "k" || c.AllowedHosts != nil {
		t.Errorf("--api-key k: %+v", c)
	}
}
