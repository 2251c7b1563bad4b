package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/sugarme/gotch"

	"github.com/clipcap/clipcap/caption"
	"github.com/clipcap/clipcap/data/imageproc"
	"github.com/clipcap/clipcap/internal/randmodel"
	"github.com/clipcap/clipcap/model/generate"
)

var (
	tinyOnce sync.Once
	tinyCap  *caption.Captioner
	tinyErr  error
	tinyDir  string
)

// tiny loads the seeded tiny model (randmodel.Tiny), once per test binary.
func tiny(t testing.TB) *caption.Captioner {
	t.Helper()
	tinyOnce.Do(func() {
		if tinyDir, tinyErr = os.MkdirTemp("", "clipcap-serve-"); tinyErr != nil {
			return
		}
		if tinyErr = randmodel.Write(tinyDir, randmodel.Tiny()); tinyErr == nil {
			tinyCap, tinyErr = caption.Load(tinyDir, caption.Options{Device: gotch.CPU})
		}
	})
	if tinyErr != nil {
		t.Fatal(tinyErr)
	}
	return tinyCap
}

func TestMain(m *testing.M) {
	code := m.Run()
	if tinyDir != "" {
		os.RemoveAll(tinyDir)
	}
	os.Exit(code)
}

// testImage is a 48x40 picture that differs with k.
func testImage(k int) image.Image {
	im := image.NewRGBA(image.Rect(0, 0, 48, 40))
	for y := 0; y < 40; y++ {
		for x := 0; x < 48; x++ {
			im.Set(x, y, color.RGBA{uint8(x*5 + k*37), uint8(y*6 + k*71), uint8((x + y + k*13) * 3), 255})
		}
	}
	return im
}

func pngBytes(t testing.TB, im image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, im); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func jpegBytes(t testing.TB, im image.Image) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, im, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// want is FromImages on the decoded bytes, alone, as the caption command does.
func want(t testing.TB, c *caption.Captioner, data []byte, opt generate.Options) caption.Caption {
	t.Helper()
	// libtorch's grad mode is per OS thread (see batcher.loop).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	im, err := imageproc.Decode(data, "want")
	if err != nil {
		t.Fatal(err)
	}
	caps, err := c.FromImages([]*imageproc.Image{im}, opt)
	if err != nil {
		t.Fatal(err)
	}
	return caps[0]
}

// jsonText is what a caption becomes after a JSON round trip (invalid
// UTF-8 turns into U+FFFD), as clients see it.
func jsonText(s string) string {
	b, _ := json.Marshal(s)
	var out string
	json.Unmarshal(b, &out)
	return out
}

func newServer(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	s, err := New(tiny(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() { hs.Close(); s.Close() })
	return s, hs
}

func post(t testing.TB, url, contentType string, body []byte) (int, http.Header, map[string]any) {
	t.Helper()
	resp, err := http.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	data, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: status %d, body not JSON: %q", url, resp.StatusCode, data)
	}
	return resp.StatusCode, resp.Header, m
}

func tokensOf(m map[string]any) []int {
	var out []int
	for _, v := range m["tokens"].([]any) {
		out = append(out, int(v.(float64)))
	}
	return out
}

func multipartBody(t *testing.T, field string, data []byte, fields map[string]string) (string, []byte) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	fw, _ := mw.CreateFormFile(field, "x.png")
	fw.Write(data)
	mw.Close()
	return mw.FormDataContentType(), b.Bytes()
}

// Raw bodies and multipart uploads, with options from the query or the
// form, caption exactly as FromImages does.
func TestCaptionEqualsFromImages(t *testing.T) {
	c := tiny(t)
	_, hs := newServer(t, Config{MaxWait: time.Millisecond})
	img0, img1, img2 := pngBytes(t, testImage(0)), pngBytes(t, testImage(1)), jpegBytes(t, testImage(2))
	ct, mp := multipartBody(t, "image", img1, map[string]string{"strategy": "beam", "beam": "3"})
	for _, tc := range []struct {
		name, url, ct string
		body, img     []byte
		opt           generate.Options
	}{
		{"raw, defaults", "/v1/captions", "image/png", img0, img0, generate.Options{}},
		{"multipart beam 3", "/v1/captions", ct, mp, img1, generate.Options{Strategy: generate.Beam, BeamSize: 3}},
		{"jpeg greedy 5 tokens", "/v1/captions?strategy=greedy&max_tokens=5", "image/jpeg", img2, img2, generate.Options{Strategy: generate.Greedy, MaxTokens: 5}},
		{"sample temperature", "/v1/captions?strategy=greedy&temperature=0.5", "application/octet-stream", img1, img1, generate.Options{Strategy: generate.Greedy, Temperature: 0.5}},
	} {
		code, _, m := post(t, hs.URL+tc.url, tc.ct, tc.body)
		if code != 200 {
			t.Fatalf("%s: %d %v", tc.name, code, m)
		}
		w := want(t, c, tc.img, tc.opt)
		if got := tokensOf(m); !reflect.DeepEqual(got, w.Tokens) || m["caption"] != jsonText(w.Text) {
			t.Errorf("%s: got %q %v, FromImages %q %v", tc.name, m["caption"], got, w.Text, w.Tokens)
		}
		tm := m["timings"].(map[string]any)
		for _, k := range []string{"queue_ms", "encode_ms", "generate_ms", "total_ms"} {
			if _, ok := tm[k].(float64); !ok {
				t.Errorf("%s: timings lack %s: %v", tc.name, k, tm)
			}
		}
		if tm["total_ms"].(float64) < tm["encode_ms"].(float64)+tm["generate_ms"].(float64) || m["batch_size"].(float64) != 1 {
			t.Errorf("%s: timings %v, batch %v", tc.name, tm, m["batch_size"])
		}
	}
}

// Concurrent requests are batched (one forward pass, batch_size > 1,
// grouped by options) and still caption as FromImages does alone.
func TestDynamicBatching(t *testing.T) {
	c := tiny(t)
	s, hs := newServer(t, Config{MaxBatch: 8, MaxWait: 300 * time.Millisecond})
	var batches [][]*job
	s.b.beforeRun = func(b []*job) { batches = append(batches, b) }
	const n = 6
	imgs := make([][]byte, n)
	for i := range imgs {
		imgs[i] = pngBytes(t, testImage(10+i))
	}
	type answer struct {
		code int
		m    map[string]any
	}
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			url := hs.URL + "/v1/captions"
			if i%2 == 1 {
				url += "?strategy=beam&beam=2"
			}
			code, _, m := post(t, url, "image/png", imgs[i])
			answers[i] = answer{code, m}
		}(i)
	}
	wg.Wait()
	if len(batches) != 1 || len(batches[0]) != n {
		t.Fatalf("%d batches (sizes %v), want one of %d", len(batches), batchSizes(batches), n)
	}
	for i, a := range answers {
		opt := generate.Options{}
		if i%2 == 1 {
			opt = generate.Options{Strategy: generate.Beam, BeamSize: 2}
		}
		if a.code != 200 {
			t.Fatalf("request %d: %d %v", i, a.code, a.m)
		}
		w := want(t, c, imgs[i], opt)
		if !reflect.DeepEqual(tokensOf(a.m), w.Tokens) {
			t.Errorf("request %d: tokens %v, FromImages %v", i, tokensOf(a.m), w.Tokens)
		}
		if a.m["batch_size"].(float64) != 3 { // two option groups of three
			t.Errorf("request %d: batch_size %v, want 3", i, a.m["batch_size"])
		}
	}
}

func batchSizes(b [][]*job) []int {
	var out []int
	for _, x := range b {
		out = append(out, len(x))
	}
	return out
}

func TestRequestErrors(t *testing.T) {
	_, hs := newServer(t, Config{MaxBody: 4000})
	big := make([]byte, 5000)
	copy(big, pngBytes(t, testImage(0)))
	noImage, mp := multipartBody(t, "file", pngBytes(t, testImage(0)), nil)
	for _, tc := range []struct {
		name, url, ct string
		body          []byte
		code          int
		msg           string
	}{
		{"too large", "/v1/captions", "image/png", big, 413, "exceeds the limit of 4000"},
		{"not an image", "/v1/captions", "text/plain", []byte("hello, world"), 400, "not a recognized image format"},
		{"empty", "/v1/captions", "image/png", nil, 400, "empty file"},
		{"truncated", "/v1/captions", "image/png", pngBytes(t, testImage(0))[:60], 400, "truncated"},
		{"bad strategy", "/v1/captions?strategy=best", "image/png", pngBytes(t, testImage(0)), 400, "strategy \"best\""},
		{"bad beam", "/v1/captions?beam=0", "image/png", pngBytes(t, testImage(0)), 400, "beam \"0\""},
		{"too many tokens", "/v1/captions?max_tokens=1000", "image/png", pngBytes(t, testImage(0)), 400, "max_tokens"},
		{"bad temperature", "/v1/captions?temperature=-1", "image/png", pngBytes(t, testImage(0)), 400, "temperature"},
		{"no image field", "/v1/captions", noImage, mp, 400, "no file field \"image\""},
	} {
		code, _, m := post(t, hs.URL+tc.url, tc.ct, tc.body)
		if msg, _ := m["error"].(string); code != tc.code || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: %d %q, want %d mentioning %q", tc.name, code, msg, tc.code, tc.msg)
		}
	}
	// A chunked body (no Content-Length) over the limit is cut off too.
	req, _ := http.NewRequest("POST", hs.URL+"/v1/captions", io.MultiReader(bytes.NewReader(big)))
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("chunked oversize body: %d, want 413", resp.StatusCode)
	}
	if resp, err := http.Get(hs.URL + "/v1/captions"); err != nil || resp.StatusCode != 405 {
		t.Errorf("GET /v1/captions: %v %v, want 405", resp.StatusCode, err)
	}
}

// A full queue answers 429 with Retry-After; a request not answered within
// the timeout gets 504.
func TestQueueFullAndTimeout(t *testing.T) {
	s, hs := newServer(t, Config{MaxBatch: 1, Queue: 1, MaxWait: time.Millisecond, Timeout: 400 * time.Millisecond})
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	s.b.beforeRun = func([]*job) {
		select {
		case started <- struct{}{}:
		default:
		}
		<-release // passes at once after close
	}
	img := pngBytes(t, testImage(3))
	codes := make(chan int, 3)
	go func() { c, _, _ := post(t, hs.URL+"/v1/captions", "image/png", img); codes <- c }()
	<-started // the first request is being computed (blocked)
	go func() { c, _, _ := post(t, hs.URL+"/v1/captions", "image/png", img); codes <- c }()
	deadline := time.Now().Add(5 * time.Second)
	for s.b.depth.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // until the second one is queued
	}
	code, hdr, m := post(t, hs.URL+"/v1/captions", "image/png", img)
	if code != 429 || hdr.Get("Retry-After") == "" || !strings.Contains(m["error"].(string), "queue is full") {
		t.Errorf("third request: %d, Retry-After %q, %v; want 429", code, hdr.Get("Retry-After"), m)
	}
	// Both blocked requests outlive the 400 ms timeout.
	for i := 0; i < 2; i++ {
		if c := <-codes; c != 504 {
			t.Errorf("blocked request %d: %d, want 504", i, c)
		}
	}
	close(release)
	for deadline := time.Now().Add(5 * time.Second); s.b.depth.Load() != 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond) // the expired jobs leave the queue
	}
	if c, _, m := post(t, hs.URL+"/v1/captions", "image/png", img); c != 200 {
		t.Errorf("after the jam: %d %v", c, m)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	s, hs := newServer(t, Config{MaxWait: time.Millisecond})
	img := pngBytes(t, testImage(4))
	post(t, hs.URL+"/v1/captions", "image/png", img)
	post(t, hs.URL+"/v1/captions", "image/png", img)
	post(t, hs.URL+"/v1/captions", "text/plain", []byte("nope"))
	body := get(t, hs.URL+"/metrics", 200)
	for _, line := range []string{
		`clipcap_requests_total{code="200"} 2`,
		`clipcap_requests_total{code="400"} 1`,
		`clipcap_request_duration_seconds_count 3`,
		`clipcap_batch_size_bucket{le="1"} 2`,
		`clipcap_batch_size_count 2`,
		`clipcap_queue_depth 0`,
		"# TYPE clipcap_batch_size histogram",
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("metrics lack %q:\n%s", line, body)
		}
	}
	if h := get(t, hs.URL+"/healthz", 200); !strings.Contains(h, `"status":"ok"`) {
		t.Errorf("healthz: %s", h)
	}
	if p := get(t, hs.URL+"/", 200); !strings.Contains(p, "getUserMedia") || strings.Contains(p, "https://") {
		t.Errorf("page is not the self-contained one: %.200s", p)
	}
	s.Shutdown()
	get(t, hs.URL+"/healthz", 503)
}

func get(t *testing.T, url string, code int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != code {
		t.Fatalf("GET %s: %d, want %d: %s", url, resp.StatusCode, code, b)
	}
	return string(b)
}

// Cancelling ListenAndServe (SIGTERM in the command) lets the request in
// flight finish with its caption, then refuses new connections.
func TestGracefulShutdown(t *testing.T) {
	c := tiny(t)
	s, err := New(c, Config{MaxBatch: 8, MaxWait: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe(ctx, "127.0.0.1:0", func(a net.Addr) { addrc <- a }) }()
	url := "http://" + (<-addrc).String() + "/v1/captions"
	img := pngBytes(t, testImage(5))
	type answer struct {
		code int
		m    map[string]any
	}
	res := make(chan answer, 1)
	go func() { code, _, m := post(t, url, "image/png", img); res <- answer{code, m} }()
	time.Sleep(100 * time.Millisecond) // the request waits in the batch window
	cancel()
	a := <-res
	if a.code != 200 || !reflect.DeepEqual(tokensOf(a.m), want(t, c, img, generate.Options{}).Tokens) {
		t.Fatalf("in-flight request: %d %v", a.code, a.m)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ListenAndServe: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ListenAndServe did not return after shutdown")
	}
	if _, err := http.Post(url, "image/png", bytes.NewReader(img)); err == nil {
		t.Error("a request after shutdown was accepted")
	}
}

// The stream answers the newest frame only: frames sent while the model is
// busy are dropped, and captions equal FromImages on the sent JPEG.
func TestStreamNewestFrame(t *testing.T) {
	c := tiny(t)
	s, hs := newServer(t, Config{MaxWait: time.Millisecond})
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	s.b.beforeRun = func([]*job) {
		select {
		case started <- struct{}{}:
		default:
		}
		<-release
	}
	ctx, conn := dialStream(t, hs.URL)
	frames := [][]byte{jpegBytes(t, testImage(6)), jpegBytes(t, testImage(7)), jpegBytes(t, testImage(8)), jpegBytes(t, testImage(9))}
	conn.Write(ctx, websocket.MessageText, []byte(`{"strategy": "greedy", "max_tokens": 6}`))
	conn.Write(ctx, websocket.MessageBinary, frames[0])
	<-started // frame 1 is in the model; 2, 3 and 4 arrive meanwhile
	for _, f := range frames[1:] {
		conn.Write(ctx, websocket.MessageBinary, f)
	}
	time.Sleep(200 * time.Millisecond)
	close(release)
	opt := generate.Options{Strategy: generate.Greedy, MaxTokens: 6}
	for _, wantFrame := range []int{1, 4} {
		_, data, err := conn.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var m StreamMessage
		if err := json.Unmarshal(data, &m); err != nil || m.Error != "" {
			t.Fatalf("message %s: %v", data, err)
		}
		w := want(t, c, frames[wantFrame-1], opt)
		if m.Frame != wantFrame || !reflect.DeepEqual(m.Tokens, w.Tokens) || m.Caption != jsonText(w.Text) {
			t.Fatalf("got frame %d %v, want frame %d %v", m.Frame, m.Tokens, wantFrame, w.Tokens)
		}
		if wantFrame == 4 && m.Dropped != 2 {
			t.Errorf("dropped %d, want 2 (frames 2 and 3)", m.Dropped)
		}
	}
	// A bad frame is answered with an error and the stream goes on.
	conn.Write(ctx, websocket.MessageBinary, []byte("not a jpeg"))
	_, data, _ := conn.Read(ctx)
	if !strings.Contains(string(data), "not a recognized image format") || !strings.Contains(string(data), `"frame":5`) {
		t.Errorf("bad frame answer: %s", data)
	}
	// Shutdown closes the stream with "going away".
	s.Shutdown()
	_, _, err := conn.Read(ctx)
	if websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("after shutdown: %v, want status going away", err)
	}
}

var _ = errors.New
var _ = fmt.Sprint
var _ = filepath.Join

// dialStream opens the WebSocket stream of the server at url with a 20 s
// deadline; the connection closes when the test ends.
func dialStream(t *testing.T, url string) (context.Context, *websocket.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+"/v1/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	return ctx, conn
}
