package train

import (
	"strings"
	"testing"
)

// ResumeOrNew starts a run that has no checkpoint and resumes one that has.
func TestResumeOrNew(t *testing.T) {
	c := tinyConfig(makeStore(t, 2), t.TempDir())
	c.Epochs, c.SampleCaptions = 1, 0
	var log strings.Builder
	tr, err := ResumeOrNew(c, nil, &log)
	if err != nil {
		t.Fatal(err)
	}
	if tr.st.Step != 0 || !strings.Contains(log.String(), "starting the run") {
		t.Fatalf("first start: step %d, log %q", tr.st.Step, log.String())
	}
	runTrainer(t, tr)
	tr.Close()
	steps := tr.st.Step
	log.Reset()
	tr, err = ResumeOrNew(c, []string{"epochs=2"}, &log)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if tr.st.Step != steps || steps == 0 || tr.Cfg.Epochs != 2 || !strings.Contains(log.String(), "resuming") {
		t.Errorf("restart: step %d (want %d), epochs %d (want 2), log %q", tr.st.Step, steps, tr.Cfg.Epochs, log.String())
	}
}
