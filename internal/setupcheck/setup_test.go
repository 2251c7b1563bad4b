package setupcheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func run(t *testing.T, env []string, script string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join("..", "..", "scripts", script), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func TestSetupRejectsBrokenLibtorch(t *testing.T) {
	empty := t.TempDir()
	for _, c := range []struct{ libtorch, want string }{
		{"/nonexistent/libtorch", "does not exist"},
		{empty, "has no lib/libtorch.so"},
	} {
		out, err := run(t, []string{"LIBTORCH=" + c.libtorch, "SETUP_SKIP_BUILD=1"}, "setup.sh")
		if err == nil {
			t.Fatalf("LIBTORCH=%s: setup succeeded:\n%s", c.libtorch, out)
		}
		lines := strings.Split(out, "\n")
		last := lines[len(lines)-1]
		if !strings.Contains(last, c.want) || !strings.Contains(last, "point it at") {
			t.Errorf("LIBTORCH=%s: last line %q lacks the cause %q or the fix", c.libtorch, last, c.want)
		}
	}
}

func TestFetchTokenizerWithoutNpm(t *testing.T) {
	// A PATH with the basic tools but no npm, and an empty target dir.
	bin := t.TempDir()
	for _, tool := range []string{"bash", "sh", "mkdir", "mktemp", "rm", "cat", "dirname", "sha256sum", "tar", "mv", "cp", "env", "cut", "awk", "grep", "ls", "head", "tr"} {
		if p, err := exec.LookPath(tool); err == nil {
			os.Symlink(p, filepath.Join(bin, tool))
		}
	}
	dir := t.TempDir()
	out, err := run(t, []string{"PATH=" + bin, "CLIPCAP_TOKENIZER_DIR=" + dir}, "fetch-tokenizer.sh")
	if err == nil {
		t.Fatalf("fetch-tokenizer succeeded without npm:\n%s", out)
	}
	if strings.Count(out, "\n") > 0 || !strings.Contains(out, "npm") || !strings.Contains(out, "install") {
		t.Errorf("want one line naming npm and how to install it, got:\n%s", out)
	}
}
