package serve

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// chatMessage is one entry of "messages": content is a string (text) or a
// list of parts.
type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// chatPart is a content part: {"type": "text", "text"} or {"type":
// "image_url", "image_url": {"url"}} (some clients send the URL as a bare
// string, which is accepted too).
type chatPart struct {
	Type     string          `json:"type"`
	Text     *string         `json:"text"`
	ImageURL json.RawMessage `json:"image_url"`
}

var chatRoles = map[string]bool{"system": true, "developer": true, "user": true, "assistant": true, "tool": true, "function": true}

// messageImage validates the message list and returns the bytes of the
// image to caption: the last image_url of the conversation (a webcam page
// sends one per request; a longer chat's latest image is the one asked
// about). hadText reports text parts, which are ignored.
func (s *Server) messageImage(ctx context.Context, raw json.RawMessage) ([]byte, bool, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, false, badField("messages", "messages is missing: send a list of messages with an image_url part")
	}
	var msgs []chatMessage
	if err := json.Unmarshal(raw, &msgs); err != nil {
		return nil, false, badField("messages", "messages must be a list of {role, content} objects: %v", err)
	}
	if len(msgs) == 0 {
		return nil, false, badField("messages", "messages is empty: send a user message with an image_url part")
	}
	var (
		imageURL, imageParam string
		hadText              bool
	)
	for i, m := range msgs {
		p := fmt.Sprintf("messages[%d]", i)
		if !chatRoles[m.Role] {
			return nil, false, badField(p+".role", "%s.role %q: want system, developer, user, assistant or tool", p, m.Role)
		}
		c := strings.TrimSpace(string(m.Content))
		switch {
		case c == "" || c == "null":
			continue // assistant messages with tool calls have no content
		case c[0] == '"':
			hadText = true
			continue
		case c[0] != '[':
			return nil, false, badField(p+".content", "%s.content must be a string or a list of parts", p)
		}
		var parts []chatPart
		if err := json.Unmarshal(m.Content, &parts); err != nil {
			return nil, false, badField(p+".content", "%s.content: %v", p, err)
		}
		for k, part := range parts {
			pp := fmt.Sprintf("%s.content[%d]", p, k)
			switch part.Type {
			case "text":
				if part.Text == nil {
					return nil, false, badField(pp+".text", "%s is a text part without text", pp)
				}
				hadText = true
			case "image_url":
				u, err := partURL(part.ImageURL)
				if err != nil {
					return nil, false, badField(pp+".image_url", "%s.image_url: %v", pp, err)
				}
				imageURL, imageParam = u, pp+".image_url.url"
			default:
				return nil, false, badField(pp+".type", "%s.type %q: clipcap reads \"image_url\" parts (and accepts and ignores \"text\")", pp, part.Type)
			}
		}
	}
	if imageURL == "" {
		return nil, hadText, badField("messages", "no message has an image_url part: clipcap captions images, send one as a data: URL")
	}
	data, err := s.loadImageURL(ctx, imageURL, imageParam)
	return data, hadText, err
}

func partURL(raw json.RawMessage) (string, error) {
	var obj struct {
		URL string `json:"url"`
	}
	var str string
	switch {
	case json.Unmarshal(raw, &str) == nil:
		obj.URL = str
	case json.Unmarshal(raw, &obj) != nil:
		return "", errors.New(`want {"url": "data:image/...;base64,..."}`)
	}
	if obj.URL == "" {
		return "", errors.New("url is missing or empty")
	}
	return obj.URL, nil
}

// loadImageURL returns a data: URL's bytes, or with AllowFetch an http(s)
// URL's, bounded by the body limit; the pixel limit applies when decoding.
func (s *Server) loadImageURL(ctx context.Context, u, param string) ([]byte, error) {
	scheme, _, _ := strings.Cut(u, ":")
	switch strings.ToLower(scheme) {
	case "data":
		return decodeDataURL(u, param)
	case "http", "https":
		if !s.cfg.AllowFetch {
			return nil, badField(param, "%s is a remote URL; this server only fetches images when started with --allow-fetch (send the image as a data: URL instead)", param)
		}
		return s.fetchImage(ctx, u, param)
	}
	return nil, badField(param, "%s: want a data: URL (data:image/jpeg;base64,...) or, with --allow-fetch, an http(s) URL", param)
}

// decodeDataURL parses data:[<type>][;base64],<data> (RFC 2397) and
// requires an image type.
func decodeDataURL(u, param string) ([]byte, error) {
	meta, payload, ok := strings.Cut(u[len("data:"):], ",")
	if !ok {
		return nil, badField(param, "%s is a malformed data URL (no comma before the data)", param)
	}
	b64 := false
	if strings.HasSuffix(strings.ToLower(meta), ";base64") {
		b64, meta = true, meta[:len(meta)-len(";base64")]
	}
	typ := "text/plain" // RFC 2397's default
	if meta != "" {
		t, _, err := mime.ParseMediaType(meta)
		if err != nil {
			return nil, badField(param, "%s: bad media type %q in the data URL: %v", param, meta, err)
		}
		typ = t
	}
	if !strings.HasPrefix(typ, "image/") {
		return nil, badField(param, "%s is a data URL of type %s, not an image (want data:image/jpeg;base64,... or another image/ type)", param, typ)
	}
	if !b64 {
		d, err := url.PathUnescape(payload)
		if err != nil {
			return nil, badField(param, "%s: bad percent-encoding in the data URL: %v", param, err)
		}
		return []byte(d), nil
	}
	// Some encoders wrap lines or drop the padding; accept both.
	payload = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == ' ' {
			return -1
		}
		return r
	}, payload)
	enc := base64.StdEncoding
	if !strings.HasSuffix(payload, "=") && len(payload)%4 != 0 {
		enc = base64.RawStdEncoding
	}
	d, err := enc.DecodeString(payload)
	if err != nil {
		return nil, badField(param, "%s: the data URL's base64 is invalid: %v", param, err)
	}
	return d, nil
}

// fetchImage GETs an image URL within the request's deadline, reading at
// most the body limit.
func (s *Server) fetchImage(ctx context.Context, u, param string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, badField(param, "%s: %v", param, err)
	}
	req.Header.Set("Accept", "image/*")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, s.timeoutErr(ctx)
		}
		return nil, badField(param, "fetching %s (%.200s): %v", param, u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, badField(param, "fetching %s (%.200s): the server answered %s", param, u, resp.Status)
	}
	if resp.ContentLength > s.cfg.MaxBody {
		return nil, errorf(http.StatusRequestEntityTooLarge, "%s: the image is %d bytes, over the limit of %d", param, resp.ContentLength, s.cfg.MaxBody)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, s.cfg.MaxBody+1))
	if err != nil {
		return nil, badField(param, "fetching %s (%.200s): %v", param, u, err)
	}
	if int64(len(data)) > s.cfg.MaxBody {
		return nil, errorf(http.StatusRequestEntityTooLarge, "%s: the image is over the limit of %d bytes", param, s.cfg.MaxBody)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		if t, _, _ := mime.ParseMediaType(ct); !strings.HasPrefix(t, "image/") && t != "application/octet-stream" {
			return nil, badField(param, "%s: the URL serves %s, not an image", param, t)
		}
	}
	return data, nil
}
