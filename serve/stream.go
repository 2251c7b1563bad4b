package serve

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/clipcap/clipcap/caption"
)

// StreamMessage is what /v1/stream sends back: the caption of frame Frame
// (frames count binary messages from 1), or an error about it. Frames that
// arrived while an older one was being captioned are dropped, so Dropped
// grows and latency does not. With the option "stream": true, partial
// messages ({"frame", "partial": true, "token", "delta"}) carry each token
// as it is generated before the frame's caption.
type StreamMessage struct {
	Frame     int     `json:"frame"`
	Partial   bool    `json:"partial,omitempty"`
	Token     *int    `json:"token,omitempty"`
	Delta     string  `json:"delta,omitempty"`
	Caption   string  `json:"caption,omitempty"`
	Tokens    []int   `json:"tokens,omitempty"`
	Timings   Timings `json:"timings"`
	BatchSize int     `json:"batch_size,omitempty"`
	Dropped   int     `json:"dropped"`
	Error     string  `json:"error,omitempty"`
}

// handleStream speaks WebSocket: binary messages are image frames (JPEG
// from the page), text messages are JSON options ({"strategy": "beam",
// "beam": "3"}, the same keys as the HTTP API) for the frames after them.
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) {
	if !s.addStream() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.streams.Done()
	conn, err := websocket.Accept(w, r, nil) // same-origin only
	if err != nil {
		return
	}
	defer conn.CloseNow()
	conn.SetReadLimit(s.cfg.MaxBody)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()

	var (
		mu      sync.Mutex
		frame   []byte
		seq     int
		opts    = map[string][]string{}
		dropped int
		wake    = make(chan struct{}, 1)
	)
	go func() { // reader: keep only the newest frame
		defer cancel()
		for {
			typ, data, err := conn.Read(ctx)
			if err != nil {
				return
			}
			mu.Lock()
			if typ == websocket.MessageText {
				var o map[string]any
				if json.Unmarshal(data, &o) == nil {
					opts = map[string][]string{}
					for k, v := range o {
						b, _ := json.Marshal(v)
						var str string
						if json.Unmarshal(b, &str) != nil {
							str = string(b)
						}
						opts[k] = []string{str}
					}
				}
				mu.Unlock()
				continue
			}
			seq++
			if frame != nil {
				dropped++
				s.met.streamDrop.Add(1)
			}
			frame = data
			mu.Unlock()
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			conn.Close(websocket.StatusNormalClosure, "")
			return
		case <-s.closing:
			conn.Close(websocket.StatusGoingAway, "server shutting down")
			return
		case <-wake:
		}
		mu.Lock()
		data, n, form, drops := frame, seq, opts, dropped
		frame = nil
		mu.Unlock()
		if data == nil {
			continue
		}
		send := func(msg StreamMessage) error {
			msg.Dropped = drops
			b, _ := json.Marshal(msg)
			wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
			defer wcancel()
			return conn.Write(wctx, websocket.MessageText, b)
		}
		if err := send(s.streamFrame(ctx, data, n, form, send)); err != nil {
			return
		}
	}
}

// addStream counts a new stream unless the server is shutting down. The
// check and the count share a lock with Shutdown, so that Close's Wait
// never runs concurrently with an Add from zero (a WaitGroup misuse).
func (s *Server) addStream() bool {
	s.streamMu.Lock()
	defer s.streamMu.Unlock()
	select {
	case <-s.closing:
		return false
	default:
		s.streams.Add(1)
		return true
	}
}

// streamFrame captions one frame; with the "stream" option it sends each
// token through send as it comes.
func (s *Server) streamFrame(ctx context.Context, data []byte, n int, form map[string][]string, send func(StreamMessage) error) StreamMessage {
	start := time.Now()
	fail := func(err error) StreamMessage {
		var he *httpError
		if errors.As(err, &he) {
			return StreamMessage{Frame: n, Error: he.msg}
		}
		return StreamMessage{Frame: n, Error: err.Error()}
	}
	opt, err := s.parseOptions(form)
	if err != nil {
		return fail(err)
	}
	fctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	px, err := s.decodeImage(fctx, data, "frame")
	if err != nil {
		return fail(err)
	}
	var res result
	if wantStream(form) {
		res, _, _, err = s.awaitStreaming(fctx, s.newJob(fctx, px, opt), 1,
			func(r result) []caption.Caption { return []caption.Caption{r.cap} },
			func(_, tok int, delta string) error {
				return send(StreamMessage{Frame: n, Partial: true, Token: &tok, Delta: delta})
			})
	} else {
		res, err = s.await(fctx, px, opt)
	}
	if err != nil {
		return fail(err)
	}
	s.met.streamCap.Add(1)
	if s.observeStream != nil {
		s.observeStream(n, res.cap)
	}
	return StreamMessage{Frame: n, Caption: res.cap.Text, Tokens: res.cap.Tokens, BatchSize: res.batch,
		Timings: Timings{QueueMS: ms(res.queue), EncodeMS: ms(res.enc), GenerateMS: ms(res.gen), TotalMS: ms(time.Since(start))}}
}
