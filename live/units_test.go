package live

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSmootherRule(t *testing.T) {
	type step struct {
		text    string
		score   float64
		shown   string
		changed bool
	}
	cases := map[string]struct {
		rule  Smoothing
		steps []step
	}{
		"two in a row": {DefaultSmoothing, []step{
			{"a", -1, "a", true}, // first caption shows at once
			{"b", -1, "a", false},
			{"a", -1, "a", false}, // resets the pending b
			{"b", -1, "a", false},
			{"c", -1, "a", false}, // a different challenger restarts the count
			{"c", -1, "c", true},  // second win in a row
		}},
		"margin": {DefaultSmoothing, []step{
			{"a", -2, "a", true},
			{"b", -1.6, "a", false}, // 0.4 better: not enough
			{"c", -1.5, "c", true},  // 0.5 better: replaces at once
			{"c", -3, "c", false},   // refreshes c's score to -3
			{"d", -2.4, "d", true},  // so 0.6 better now wins
		}},
		"no smoothing": {Smoothing{Confirm: 1, Margin: -1}, []step{
			{"a", 0, "a", true}, {"b", -9, "b", true}, {"b", -9, "b", false},
		}},
		"margin off": {Smoothing{Confirm: 3, Margin: -1}, []step{
			{"a", -5, "a", true}, {"b", 0, "a", false}, {"b", 0, "a", false}, {"b", 0, "b", true},
		}},
	}
	for name, tc := range cases {
		s := NewSmoother(tc.rule)
		for i, st := range tc.steps {
			shown, changed := s.Observe(st.text, st.score)
			if shown != st.shown || changed != st.changed {
				t.Errorf("%s step %d (%q, %v): got (%q, %v), want (%q, %v)", name, i, st.text, st.score, shown, changed, st.shown, st.changed)
			}
		}
	}
}

func TestCueWriterFormats(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, want string }{
		{"a.vtt", "WEBVTT\n\n1\n00:00:00.000 --> 00:00:01.500\nhello\n\n2\n00:00:01.500 --> 01:02:03.004\nx -&gt; y\n\n"},
		{"a.srt", "1\n00:00:00,000 --> 00:00:01,500\nhello\n\n2\n00:00:01,500 --> 01:02:03,004\nx -> y\n\n"},
	} {
		path := filepath.Join(dir, tc.name)
		cw, err := NewCueWriter(path)
		if err != nil {
			t.Fatal(err)
		}
		must(t, cw.Show("hello", 0))
		must(t, cw.Show("hello", time.Second)) // same text: same cue
		must(t, cw.Show("x\n-->\ty", 1500*time.Millisecond))
		must(t, cw.Close(time.Hour+2*time.Minute+3*time.Second+4*time.Millisecond))
		got, _ := os.ReadFile(path)
		if string(got) != tc.want {
			t.Errorf("%s:\n%q\nwant\n%q", tc.name, got, tc.want)
		}
	}
	if _, err := NewCueWriter(filepath.Join(dir, "a.txt")); err == nil || !strings.Contains(err.Error(), "a.txt") {
		t.Errorf("unknown extension: err = %v", err)
	}
}

func TestCueText(t *testing.T) {
	for in, want := range map[string]string{
		"a dog.":          "a dog.",
		" two\n lines\r ": "two lines",
		"bad \xff byte":   "bad \uFFFD byte",
		"nul\x00":         "nul",
		"a-->b":           "a->b",
	} {
		if got := CueText(in); got != want {
			t.Errorf("CueText(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseSource(t *testing.T) {
	f := filepath.Join(t.TempDir(), "v.mp4")
	os.WriteFile(f, []byte("x"), 0o644)
	for spec, want := range map[string]Source{
		"0":                 {Camera, "/dev/video0"},
		"/dev/video2":       {Camera, "/dev/video2"},
		"rtsp://cam/stream": {Stream, "rtsp://cam/stream"},
		f:                   {File, f},
	} {
		got, err := ParseSource(spec)
		if err != nil || got != want {
			t.Errorf("ParseSource(%q) = %v, %v; want %v", spec, got, err, want)
		}
	}
	for _, bad := range []string{"", "/no/such/video.mp4", t.TempDir()} {
		if _, err := ParseSource(bad); err == nil {
			t.Errorf("ParseSource(%q) accepted", bad)
		}
	}
}

func TestCaptureSizeAndRate(t *testing.T) {
	for _, tc := range []struct{ w, h, n, ww, wh int }{
		{640, 480, 224, 640, 480}, // big enough: untouched
		{160, 120, 224, 300, 224}, // short side up to 224, even width
		{100, 200, 224, 224, 448},
		{161, 121, 32, 161, 121},
	} {
		if w, h := CaptureSize(tc.w, tc.h, tc.n); w != tc.ww || h != tc.wh {
			t.Errorf("CaptureSize(%d, %d, %d) = %dx%d, want %dx%d", tc.w, tc.h, tc.n, w, h, tc.ww, tc.wh)
		}
	}
	for in, want := range map[string]float64{"30000/1001": 30000.0 / 1001, "25/1": 25, "0/0": 0, "x": 0, "12": 12} {
		if got := parseRate(in); got != want {
			t.Errorf("parseRate(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestOverlayAndWrap(t *testing.T) {
	if got := wrap("a bb ccc dddddddd", 4); strings.Join(got, "|") != "a bb|ccc|dddd|dddd" {
		t.Errorf("wrap = %q", got)
	}
	w, h := 120, 60
	pix := make([]byte, w*h*3)
	for i := range pix {
		pix[i] = 100
	}
	DrawOverlay(pix, w, h, "a cat", "9 fps")
	count := func(y0, y1 int, pred func(byte) bool) int {
		n := 0
		for _, v := range pix[3*w*y0 : 3*w*y1] {
			if pred(v) {
				n++
			}
		}
		return n
	}
	white := func(v byte) bool { return v == 255 }
	// Status at the top, caption at the bottom, the middle untouched.
	if count(0, 20, white) == 0 || count(40, 60, white) == 0 {
		t.Error("no text drawn in the status or caption band")
	}
	if n := count(22, 38, func(v byte) bool { return v != 100 }); n != 0 {
		t.Errorf("%d bytes changed between the bands", n)
	}
	if count(40, 60, func(v byte) bool { return v == 40 }) == 0 {
		t.Error("caption band not darkened")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
