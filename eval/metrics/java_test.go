package metrics

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The bridges are tested against fake jars: this test binary re-executed as
// the "java" process (TestHelperJava), speaking the METEOR and SPICE
// protocols with made-up but checkable numbers.

func TestHelperJava(t *testing.T) {
	mode := os.Getenv("CLIPCAP_FAKE_JAVA")
	if mode == "" {
		t.Skip("helper process for the METEOR/SPICE bridge tests")
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	var err error
	switch mode {
	case "meteor":
		err = fakeMeteor(args)
	case "spice":
		err = fakeSpice(args)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake java:", err)
		os.Exit(3)
	}
	os.Exit(0)
}

// fakeMeteor answers SCORE with "refs words" and EVAL with words/(refs+words)
// per image, then their sum as the corpus score.
func fakeMeteor(args []string) error {
	want := "-jar -Xmx2G JAR - - -stdio -l en -norm"
	if got := strings.Join(args, " "); !strings.HasPrefix(got, "-jar -Xmx2G /") || strings.Replace(got, args[2], "JAR", 1) != want {
		return fmt.Errorf("meteor args %q", got)
	}
	if wd, _ := os.Getwd(); wd != filepath.Dir(args[2]) {
		return fmt.Errorf("meteor runs in %s, not the jar's directory", wd)
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Split(in.Text(), " ||| ")
		switch f[0] {
		case "SCORE":
			hyp := f[len(f)-1]
			if strings.Contains(hyp, "|||") || strings.Contains(hyp, "  ") {
				return fmt.Errorf("unsanitized hypothesis %q", hyp)
			}
			fmt.Printf("%d %d\n", len(f)-2, len(strings.Fields(hyp)))
		case "EVAL":
			sum := 0.0
			for _, st := range f[1:] {
				var r, w float64
				fmt.Sscanf(st, "%g %g", &r, &w)
				fmt.Println(w / (r + w))
				sum += w / (r + w)
			}
			fmt.Println(sum)
		default:
			return fmt.Errorf("bad line %q", in.Text())
		}
	}
	return nil
}

// fakeSpice reads SPICE's input and writes All.f = words/10 per image, or
// "NaN" for an empty candidate.
func fakeSpice(args []string) error {
	if len(args) != 10 || args[0] != "-jar" || args[1] != "-Xmx8G" || args[4] != "-cache" || args[6] != "-out" || args[8] != "-subset" || args[9] != "-silent" {
		return fmt.Errorf("spice args %q", args)
	}
	b, err := os.ReadFile(args[3])
	if err != nil {
		return err
	}
	var items []spiceItem
	if err := json.Unmarshal(b, &items); err != nil {
		return err
	}
	var out []map[string]any
	for i := len(items) - 1; i >= 0; i-- { // any order: results are matched by id
		it := items[i]
		var f any = float64(len(strings.Fields(it.Test))) / 10
		if it.Test == "" {
			f = "NaN"
		}
		out = append(out, map[string]any{"image_id": it.ImageID, "scores": map[string]any{"All": map[string]any{"f": f, "pr": 0, "re": 0}}})
	}
	b, _ = json.Marshal(out)
	return os.WriteFile(args[7], b, 0o644)
}

// fakeJava points the bridges at the helper process and returns options
// with a fake jar file.
func fakeJava(t *testing.T, mode string) Options {
	t.Helper()
	old := javaCommand
	t.Cleanup(func() { javaCommand = old })
	javaCommand = func(java string, args ...string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestHelperJava$", "--"}, args...)...)
		cmd.Env = append(os.Environ(), "CLIPCAP_FAKE_JAVA="+mode)
		return cmd
	}
	jar := filepath.Join(t.TempDir(), mode+".jar")
	if err := os.WriteFile(jar, []byte("not a real jar"), 0o644); err != nil {
		t.Fatal(err)
	}
	return Options{Java: os.Args[0], MeteorJar: jar, SpiceJar: jar}
}

func bridgeInput() ([]ImageID, []string, [][]string) {
	ids := []ImageID{IntID(1), StringID("b"), IntID(3)}
	cands := []string{"a dog runs", "two ||| cats  sit here", ""}
	refs := [][]string{{"a dog", "the dog runs"}, {"cats"}, {"x", "y", "z"}}
	return ids, cands, refs
}

func TestMeteorBridge(t *testing.T) {
	opts := fakeJava(t, "meteor")
	opts.SpiceJar = ""
	ids, cands, refs := bridgeInput()
	rep, err := ScoreTokenized(ids, cands, refs, opts)
	if err != nil {
		t.Fatal(err)
	}
	// words after sanitizing: 3, 4 ("two cats sit here"), 0.
	want := []float64{3.0 / 5, 4.0 / 5, 0}
	for i, w := range want {
		if got := rep.Images[i].Scores[Meteor]; math.Abs(got-w) > 1e-12 {
			t.Errorf("image %v METEOR %g, want %g", ids[i], got, w)
		}
	}
	if got := rep.Corpus[Meteor]; math.Abs(got-1.4) > 1e-12 {
		t.Errorf("corpus METEOR %g, want the process's last line 1.4", got)
	}
	if _, ok := rep.Corpus[Spice]; ok {
		t.Error("SPICE present without a SPICE jar")
	}
}

func TestSpiceBridge(t *testing.T) {
	opts := fakeJava(t, "spice")
	opts.MeteorJar = ""
	ids, cands, refs := bridgeInput()
	rep, err := ScoreTokenized(ids, cands, refs, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Images[0].Scores[Spice]; got != 0.3 {
		t.Errorf("image 1 SPICE %g, want 0.3", got)
	}
	if got := rep.Images[1].Scores[Spice]; got != 0.5 { // SPICE gets the caption as is: 5 fields
		t.Errorf("image b SPICE %g, want 0.5", got)
	}
	if got := rep.Images[2].Scores[Spice]; !math.IsNaN(got) {
		t.Errorf("image 3 SPICE %g, want NaN", got)
	}
	if !math.IsNaN(rep.Corpus[Spice]) {
		t.Errorf("corpus SPICE %g, want NaN (np.mean with a NaN)", rep.Corpus[Spice])
	}
	b, err := json.Marshal(rep.Images[2])
	if err != nil || !strings.Contains(string(b), `"SPICE":null`) {
		t.Errorf("NaN should marshal as null: %s %v", b, err)
	}
	if _, ok := rep.Corpus[Meteor]; ok {
		t.Error("METEOR present without a METEOR jar")
	}
}

func TestBridgeErrors(t *testing.T) {
	ids, cands, refs := bridgeInput()
	_, err := ScoreTokenized(ids, cands, refs, Options{MeteorJar: "/nonexistent/meteor-1.5.jar"})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/meteor-1.5.jar") {
		t.Errorf("missing jar: %v", err)
	}
	jar := filepath.Join(t.TempDir(), "m.jar")
	os.WriteFile(jar, nil, 0o644)
	_, err = ScoreTokenized(ids, cands, refs, Options{MeteorJar: jar, Java: "/nonexistent/java"})
	if err == nil || !strings.Contains(err.Error(), "needs java") {
		t.Errorf("missing java: %v", err)
	}
	// A process that dies mid-protocol is reported with its stderr.
	opts := fakeJava(t, "meteor")
	javaCommand = func(java string, args ...string) *exec.Cmd {
		return exec.Command("sh", "-c", "echo boom >&2; exit 1")
	}
	_, err = ScoreTokenized(ids, cands, refs, Options{Java: opts.Java, MeteorJar: opts.MeteorJar})
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("dead process: %v", err)
	}
}

// TestRealMeteor runs the toolkit's meteor-1.5.jar when CLIPCAP_METEOR_JAR
// names it (with data/paraphrase-en.gz beside it) and java is installed.
func TestRealMeteor(t *testing.T) {
	jar := os.Getenv("CLIPCAP_METEOR_JAR")
	if jar == "" {
		t.Skip("set CLIPCAP_METEOR_JAR to pycocoevalcap's meteor/meteor-1.5.jar to run METEOR for real")
	}
	if _, err := exec.LookPath("java"); err != nil {
		t.Skip("java not on PATH")
	}
	ids, _, refs := bridgeInput()
	cands := []string{"a dog runs", "cats", "x"}
	rep, err := ScoreTokenized(ids, cands, refs, Options{MeteorJar: jar})
	if err != nil {
		t.Fatal(err)
	}
	for i, im := range rep.Images {
		if v := im.Scores[Meteor]; !(v > 0.5 && v <= 1) {
			t.Errorf("image %d: METEOR %g for a near-exact match", i, v)
		}
	}
}

// A jar that hangs is killed: METEOR when an answer does not come within
// AnswerTimeout, SPICE when the run exceeds JarTimeout.
func TestJarTimeouts(t *testing.T) {
	ids, cands, refs := bridgeInput()
	opts := fakeJava(t, "meteor")
	javaCommand = func(java string, args ...string) *exec.Cmd { return exec.Command("sleep", "30") }
	start := time.Now()
	_, err := ScoreTokenized(ids, cands, refs, Options{Java: opts.Java, MeteorJar: opts.MeteorJar, AnswerTimeout: 200 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "without an answer") {
		t.Errorf("hung METEOR: %v", err)
	}
	_, err = ScoreTokenized(ids, cands, refs, Options{Java: opts.Java, SpiceJar: opts.SpiceJar, JarTimeout: 200 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "running for 200ms") {
		t.Errorf("hung SPICE: %v", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the hung jars were waited on for %v", d)
	}
}
