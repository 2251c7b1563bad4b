package serve

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func do(t *testing.T, method, url, host, auth string, body []byte) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	if host != "" {
		req.Host = host
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A DNS-rebinding page reaches the server under its own name: Host (and
// the WebSocket's Origin) say evil.example. Only IPs, localhost, the listen
// address and --allowed-hosts are served.
func TestHostCheckBlocksDNSRebinding(t *testing.T) {
	_, hs := newServer(t, Config{MaxWait: time.Millisecond, AllowedHosts: []string{"caption.example.com"}})
	port := hs.URL[strings.LastIndex(hs.URL, ":"):]
	img := pngBytes(t, testImage(1))
	for host, want := range map[string]int{
		"evil.example" + port: 403, "localhost" + port: 200, "127.0.0.1" + port: 200, "[::1]" + port: 200,
		"caption.example.com": 200, "CAPTION.example.com.": 200, "caption.example.com.evil.example": 403,
	} {
		if code := do(t, "POST", hs.URL+"/v1/captions", host, "", img); code != want {
			t.Errorf("Host %s: %d, want %d", host, code, want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws := "ws" + strings.TrimPrefix(hs.URL, "http") + "/v1/stream"
	h := http.Header{"Origin": {"http://evil.example" + port}}
	_, resp, err := websocket.Dial(ctx, ws, &websocket.DialOptions{Host: "evil.example" + port, HTTPHeader: h})
	if err == nil || resp == nil || resp.StatusCode != 403 {
		t.Errorf("rebound WebSocket: %v, %v; want 403", resp, err)
	}
	conn, _, err := websocket.Dial(ctx, ws, nil)
	if err != nil {
		t.Fatalf("WebSocket by IP: %v", err)
	}
	conn.CloseNow()
}

// With an API key every route but the page and /healthz needs it; the
// WebSocket takes it as ?access_token= since browsers cannot set headers.
func TestAPIKey(t *testing.T) {
	_, hs := newServer(t, Config{MaxWait: time.Millisecond, APIKey: "s3cret"})
	img := pngBytes(t, testImage(2))
	for _, tc := range []struct {
		method, path, auth string
		want               int
	}{
		{"POST", "/v1/captions", "", 401}, {"POST", "/v1/captions", "Bearer wrong", 401}, {"POST", "/v1/captions", "s3cret", 401},
		{"POST", "/v1/captions", "Bearer s3cret", 200}, {"GET", "/metrics", "", 401}, {"GET", "/metrics", "Bearer s3cret", 200},
		{"GET", "/healthz", "", 200}, {"GET", "/", "", 200}, {"POST", "/v1/captions?access_token=s3cret", "", 401},
	} {
		if code := do(t, tc.method, hs.URL+tc.path, "", tc.auth, img); code != tc.want {
			t.Errorf("%s %s with %q: %d, want %d", tc.method, tc.path, tc.auth, code, tc.want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws := "ws" + strings.TrimPrefix(hs.URL, "http") + "/v1/stream"
	if _, resp, err := websocket.Dial(ctx, ws, nil); err == nil || resp.StatusCode != 401 {
		t.Errorf("stream without key: %v", err)
	}
	conn, _, err := websocket.Dial(ctx, ws+"?access_token=s3cret", nil)
	if err != nil {
		t.Fatalf("stream with key: %v", err)
	}
	conn.CloseNow()
}
