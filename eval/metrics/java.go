package metrics

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The METEOR and SPICE bridges run the toolkit's jars with the toolkit's
// command lines and protocols, from the jar's directory (where each finds
// its data). javaCommand builds the process; tests replace it with a fake.
var javaCommand = func(java string, args ...string) *exec.Cmd { return exec.Command(java, args...) }

// jarCommand checks the jar and java, and returns the command to run.
func jarCommand(opts Options, metric, jar string, args ...string) (*exec.Cmd, error) {
	abs, err := filepath.Abs(jar)
	if err != nil {
		return nil, fmt.Errorf("%s: jar %s: %w", metric, jar, err)
	}
	if st, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("%s: jar %s: %w", metric, jar, err)
	} else if st.IsDir() {
		return nil, fmt.Errorf("%s: jar %s is a directory", metric, jar)
	}
	java := opts.Java
	if java == "" {
		java = "java"
	}
	if _, err := exec.LookPath(java); err != nil {
		return nil, fmt.Errorf("%s: needs java to run %s: %w", metric, jar, err)
	}
	full := append([]string{"-jar"}, args[0])
	full = append(full, abs)
	full = append(full, args[1:]...)
	cmd := javaCommand(java, full...)
	cmd.Dir = filepath.Dir(abs)
	return cmd, nil
}

// watchdog kills a started jar when its time is up: the whole run after
// JarTimeout, or (METEOR) an answer that took longer than AnswerTimeout.
// fired says which, for the error message.
type watchdog struct {
	whole, step *time.Timer
	stepLen     time.Duration
	mu          sync.Mutex
	why         string
}

func startWatchdog(cmd *exec.Cmd, opts Options) *watchdog {
	whole, step := opts.JarTimeout, opts.AnswerTimeout
	if whole <= 0 {
		whole = time.Hour
	}
	if step <= 0 {
		step = 5 * time.Minute
	}
	w := &watchdog{stepLen: step}
	kill := func(why string) func() {
		return func() {
			w.mu.Lock()
			if w.why == "" {
				w.why = why
			}
			w.mu.Unlock()
			cmd.Process.Kill()
		}
	}
	w.whole = time.AfterFunc(whole, kill(fmt.Sprintf("killed after running for %v (JarTimeout)", whole)))
	w.step = time.AfterFunc(step, kill(fmt.Sprintf("killed after %v without an answer (AnswerTimeout)", step)))
	return w
}

// answered restarts the per-answer clock.
func (w *watchdog) answered() { w.step.Reset(w.stepLen) }

func (w *watchdog) stop() {
	w.whole.Stop()
	w.step.Stop()
}

// fired is why the process was killed, or "".
func (w *watchdog) fired() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.why
}

// meteorScore speaks meteor-1.5.jar's -stdio protocol as pycocoevalcap
// does: one "SCORE ||| ref ||| ... ||| hyp" line per image, answered by a
// statistics line; then "EVAL ||| stats ||| ...", answered by one score per
// image and the corpus score.
func meteorScore(opts Options, cands []string, refs [][]string) (float64, []float64, error) {
	cmd, err := jarCommand(opts, "METEOR", opts.MeteorJar, "-Xmx2G", "-", "-", "-stdio", "-l", "en", "-norm")
	if err != nil {
		return 0, nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, nil, fmt.Errorf("METEOR: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, nil, fmt.Errorf("METEOR: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return 0, nil, fmt.Errorf("METEOR: starting %s: %w", opts.MeteorJar, err)
	}
	dog := startWatchdog(cmd, opts)
	defer dog.stop()
	defer func() {
		stdin.Close()
		cmd.Process.Kill() // like the toolkit's __del__; the answer is already read
		cmd.Wait()
	}()
	out := bufio.NewReader(stdout)
	fail := func(what string, err error) error {
		// Let the process finish (or kill it) so its stderr is fully
		// collected before it is reported: cmd.Wait copies the last bytes.
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if why := dog.fired(); why != "" {
			err = fmt.Errorf("%v: %s", err, why)
		}
		return fmt.Errorf("METEOR: %s: %v (stderr: %s)", what, err, strings.TrimSpace(stderr.String()))
	}
	readLine := func() (string, error) {
		s, err := out.ReadString('\n')
		if err != nil && (!errors.Is(err, io.EOF) || s == "") {
			return "", err
		}
		dog.answered()
		return strings.TrimSpace(s), nil
	}
	w := bufio.NewWriter(stdin)
	eval := []string{"EVAL"}
	for i, c := range cands {
		hyp := strings.ReplaceAll(strings.ReplaceAll(c, "|||", ""), "  ", " ")
		line := "SCORE ||| " + strings.Join(refs[i], " ||| ") + " ||| " + hyp + "\n"
		if _, err := w.WriteString(line); err != nil {
			return 0, nil, fail("writing", err)
		}
		if err := w.Flush(); err != nil {
			return 0, nil, fail("writing", err)
		}
		stat, err := readLine()
		if err != nil {
			return 0, nil, fail("reading statistics", err)
		}
		eval = append(eval, stat)
	}
	if _, err := w.WriteString(strings.Join(eval, " ||| ") + "\n"); err != nil {
		return 0, nil, fail("writing", err)
	}
	if err := w.Flush(); err != nil {
		return 0, nil, fail("writing", err)
	}
	per := make([]float64, len(cands))
	for i := range per {
		s, err := readLine()
		if err != nil {
			return 0, nil, fail("reading scores", err)
		}
		if per[i], err = strconv.ParseFloat(s, 64); err != nil {
			return 0, nil, fail("reading scores", err)
		}
	}
	s, err := readLine()
	if err != nil {
		return 0, nil, fail("reading the corpus score", err)
	}
	corpus, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, nil, fail("reading the corpus score", err)
	}
	return corpus, per, nil
}

// spiceItem is one entry of SPICE's input file.
type spiceItem struct {
	ImageID int      `json:"image_id"`
	Test    string   `json:"test"`
	Refs    []string `json:"refs"`
}

// spiceScore writes SPICE's JSON input, runs spice-1.0.jar as the toolkit
// does (-subset -silent, a parse cache) and reads the "All" F-score per
// image from its JSON output; the corpus score is their mean. Images are
// numbered 0..n-1 in the files, so any image_id form round-trips.
func spiceScore(opts Options, cands []string, refs [][]string) (float64, []float64, error) {
	tmp, err := os.MkdirTemp("", "clipcap-spice-")
	if err != nil {
		return 0, nil, fmt.Errorf("SPICE: %w", err)
	}
	defer os.RemoveAll(tmp)
	items := make([]spiceItem, len(cands))
	for i := range cands {
		items[i] = spiceItem{ImageID: i, Test: cands[i], Refs: refs[i]}
	}
	in := filepath.Join(tmp, "input.json")
	outPath := filepath.Join(tmp, "output.json")
	b, err := json.Marshal(items)
	if err != nil {
		return 0, nil, fmt.Errorf("SPICE: %w", err)
	}
	if err := os.WriteFile(in, b, 0o644); err != nil {
		return 0, nil, fmt.Errorf("SPICE: %w", err)
	}
	cache := opts.SpiceCache
	if cache == "" {
		cache = filepath.Join(tmp, "cache")
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return 0, nil, fmt.Errorf("SPICE: cache: %w", err)
	}
	cmd, err := jarCommand(opts, "SPICE", opts.SpiceJar, "-Xmx8G", in, "-cache", cache, "-out", outPath, "-subset", "-silent")
	if err != nil {
		return 0, nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	if err := cmd.Start(); err != nil {
		return 0, nil, fmt.Errorf("SPICE: starting %s: %w", opts.SpiceJar, err)
	}
	opts.AnswerTimeout = math.MaxInt64 // SPICE answers once, at the end
	dog := startWatchdog(cmd, opts)
	err = cmd.Wait()
	dog.stop()
	if err != nil {
		if why := dog.fired(); why != "" {
			err = fmt.Errorf("%v: %s", err, why)
		}
		return 0, nil, fmt.Errorf("SPICE: %s: %v (output: %s)", opts.SpiceJar, err, strings.TrimSpace(stderr.String()))
	}
	return readSpiceOutput(outPath, len(cands))
}

func readSpiceOutput(path string, n int) (float64, []float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, nil, fmt.Errorf("SPICE: reading its output: %w", err)
	}
	var res []struct {
		ImageID *int `json:"image_id"`
		Scores  struct {
			All struct {
				F json.RawMessage `json:"f"`
			} `json:"All"`
		} `json:"scores"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return 0, nil, fmt.Errorf("SPICE: output %s: %w", path, err)
	}
	per := make([]float64, n)
	seen := make([]bool, n)
	all := make([]float64, 0, len(res))
	for _, r := range res {
		if r.ImageID == nil || *r.ImageID < 0 || *r.ImageID >= n || seen[*r.ImageID] {
			return 0, nil, fmt.Errorf("SPICE: output %s: unexpected or repeated image_id", path)
		}
		f := spiceFloat(r.Scores.All.F)
		per[*r.ImageID] = f
		seen[*r.ImageID] = true
		all = append(all, f)
	}
	for i, ok := range seen {
		if !ok {
			return 0, nil, fmt.Errorf("SPICE: output %s: no score for image #%d", path, i)
		}
	}
	return mean(all), per, nil
}

// spiceFloat is the toolkit's float_convert: a number, or NaN for anything
// that is not one (SPICE writes NaN when a graph is empty).
func spiceFloat(raw json.RawMessage) float64 {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return math.NaN()
	}
	switch x := v.(type) {
	case float64:
		return x
	case string:
		if f, err := strconv.ParseFloat(x, 64); err == nil {
			return f
		}
	}
	return math.NaN()
}
