package serve

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/clipcap/clipcap/caption"
)

// chromium finds a Chromium, installing Debian's when missing (root with
// apt-get only). It skips the test, saying why, when none can be had.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := exec.LookPath("apt-get"); err != nil || os.Geteuid() != 0 {
		t.Skip("no Chromium and no way to install it (needs root and apt-get): apt-get install -y chromium")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "apt-get", "install", "-y", "chromium").CombinedOutput()
	if p, lerr := exec.LookPath("chromium"); err == nil && lerr == nil {
		return p
	}
	t.Skipf("installing Chromium failed (%v): %.500s", err, out)
	return ""
}

// writeY4M writes a 2 s, 10 fps YUV 4:2:0 clip of one still picture for
// Chromium's fake camera.
func writeY4M(path string, w, h int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriter(f)
	fmt.Fprintf(bw, "YUV4MPEG2 W%d H%d F10:1 Ip A1:1 C420jpeg\n", w, h)
	for n := 0; n < 20; n++ {
		bw.WriteString("FRAME\n")
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				bw.WriteByte(uint8(40 + (x*180)/w)) // luma ramp
			}
		}
		for p := 0; p < 2; p++ {
			for y := 0; y < h/2; y++ {
				for x := 0; x < w/2; x++ {
					bw.WriteByte(uint8(60 + p*120 + (y*60)/h))
				}
			}
		}
	}
	return bw.Flush()
}

// browser starts headless Chromium with a fake camera playing a still
// picture; the context ends with the test.
func browser(t *testing.T, bin string) context.Context {
	t.Helper()
	dir := t.TempDir()
	y4m := filepath.Join(dir, "cam.y4m")
	if err := writeY4M(y4m, 320, 240); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-file-for-fake-video-capture", y4m),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(acancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, tcancel := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(tcancel)
	return ctx
}

// The page, in headless Chromium with a fake camera, streams frames and
// shows the caption the server sent for one of them.
func TestWebPageShowsServerCaption(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	bin := chromium(t)
	s, err := New(tiny(t), Config{MaxWait: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	sent := map[int]string{}
	tokens := map[int]int{}
	s.observeStream = func(frame int, c caption.Caption) {
		mu.Lock()
		sent[frame] = jsonText(c.Text)
		tokens[frame] = len(c.Tokens)
		mu.Unlock()
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() { hs.Close(); s.Close() }) // after the browser's cleanups

	ctx := browser(t, bin)
	if _, err := chromedp.Run(ctx, chromedp.Navigate(hs.URL+"/")); err != nil {
		t.Fatalf("opening the page: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Click("#start")); err != nil {
		t.Fatalf("clicking Start: %v", err)
	}
	type shown struct {
		Text   string `json:"text"`
		Frame  int    `json:"frame"`
		Tokens int    `json:"tokens"`
	}
	got, err := chromedp.Run(ctx, chromedp.Poll[shown](`(() => {
		const c = document.getElementById("caption");
		return c.dataset.frame ? {text: c.textContent, frame: Number(c.dataset.frame), tokens: Number(c.dataset.tokens)} : null;
	})()`, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(40*time.Second)))
	if err != nil {
		status, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("status").textContent`))
		t.Fatalf("waiting for a caption on the page (status %q): %v", status, err)
	}
	text, n := got.Text, got.Frame
	frame := fmt.Sprint(n)
	mu.Lock()
	want, ok := sent[n]
	ntok := tokens[n]
	mu.Unlock()
	if !ok || text != want || text == "" {
		t.Fatalf("page shows %q for frame %s; the server sent %q (%v)", text, frame, want, ok)
	}
	// The page showed the tokens as they came, one message each.
	if got.Tokens != ntok {
		t.Errorf("the page received %d token messages for frame %d's %d tokens", got.Tokens, n, ntok)
	}
	t.Logf("page shows frame %d's caption %q", n, text)
}

// In chat mode the page behaves like third-party real-time webcam pages
// on an OpenAI-style server: an interval timer posts the frame as a JPEG
// data URL to /v1/chat/completions, skipping ticks while a request is in
// flight, and shows the answer.
func TestWebPageChatMode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	bin := chromium(t)
	// With an API key, which the page forwards from ?key=.
	s, err := New(tiny(t), Config{MaxWait: time.Millisecond, APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	// Each caption takes >= 300 ms, three of the page's 100 ms ticks.
	s.b.beforeRun = func([]*job) { time.Sleep(300 * time.Millisecond) }
	var (
		mu                          sync.Mutex
		answered                    = map[string]string{}
		requests, inflight, maxSeen int
		badBodies                   []string
	)
	s.observeChat = func(id string, choices []caption.Caption) {
		mu.Lock()
		answered[id] = jsonText(choices[0].Text)
		mu.Unlock()
	}
	h := s.Handler()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/chat/completions" {
			h.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		mu.Lock()
		requests++
		inflight++
		maxSeen = max(maxSeen, inflight)
		if !bytes.Contains(body, []byte(`"image_url":{"url":"data:image/jpeg;base64,`)) {
			badBodies = append(badBodies, fmt.Sprintf("%.200s", body))
		}
		mu.Unlock()
		h.ServeHTTP(w, r)
		mu.Lock()
		inflight--
		mu.Unlock()
	}))
	t.Cleanup(func() { hs.Close(); s.Close() })
	ctx := browser(t, bin)
	if _, err := chromedp.Run(ctx, chromedp.Navigate(hs.URL+"/?mode=chat&interval=100&key=k")); err != nil {
		t.Fatalf("opening the page: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Click("#start")); err != nil {
		t.Fatalf("clicking Start: %v", err)
	}
	type shown struct {
		Text string `json:"text"`
		ID   string `json:"id"`
	}
	poll := func(js string) (shown, error) {
		return chromedp.Run(ctx, chromedp.Poll[shown](js, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(40*time.Second)))
	}
	// Wait for the third answer, so the timer has ticked through requests.
	got, err := poll(`(() => {
		const c = document.getElementById("caption");
		window.ids = window.ids || new Set();
		if (c.dataset.id) window.ids.add(c.dataset.id);
		return window.ids.size >= 3 ? {text: c.textContent, id: c.dataset.id} : null;
	})()`)
	if err != nil {
		status, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("status").textContent`))
		t.Fatalf("waiting for captions from /v1/chat/completions (status %q): %v", status, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want, ok := answered[got.ID]; !ok || got.Text != want || got.Text == "" {
		t.Errorf("page shows %q for completion %s; the server answered %q (%v)", got.Text, got.ID, want, ok)
	}
	if maxSeen != 1 {
		t.Errorf("%d chat requests were in flight at once; the page should skip ticks while one is", maxSeen)
	}
	if len(badBodies) > 0 {
		t.Errorf("requests without a JPEG data URL image part: %q", badBodies)
	}
	t.Logf("page posted %d frames, one at a time, and shows %q", requests, got.Text)
}
