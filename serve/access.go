package serve

import (
	"crypto/subtle"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Access checks that run before a request is routed.
//
// Host: a web page on another site can make a browser talk to a server on
// localhost by pointing its own DNS name at 127.0.0.1 (DNS rebinding); the
// browser then sends that name as Host, and the WebSocket same-origin check
// compares Origin with Host, so it passes. Only Host values the server knows
// for itself are accepted: IP literals, "localhost", the host of --addr and
// --allowed-hosts ("*" accepts any, e.g. behind a proxy that checks).
//
// API key: with --api-key every route but the page and /healthz needs
// "Authorization: Bearer KEY". Browsers cannot set headers on a WebSocket,
// so /v1/stream also takes the key as ?access_token=KEY.

// allowedHost reports whether a Host header names this server.
func (s *Server) allowedHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if host == "" {
		return false
	}
	if net.ParseIP(host) != nil || strings.EqualFold(host, "localhost") {
		return true
	}
	for _, a := range s.hosts() {
		if a == "*" || strings.EqualFold(a, host) {
			return true
		}
	}
	return false
}

func (s *Server) hosts() []string {
	s.hostMu.RLock()
	defer s.hostMu.RUnlock()
	return s.allowed
}

// allowHost adds the host of a listen address (a name; IPs pass anyway).
func (s *Server) allowHost(addr string) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return
	}
	s.hostMu.Lock()
	s.allowed = append(s.allowed, host)
	s.hostMu.Unlock()
}

// authorized checks the API key, when one is set, in constant time.
func (s *Server) authorized(r *http.Request) bool {
	if s.cfg.APIKey == "" {
		return true
	}
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok && r.URL.Path == "/v1/stream" {
		key, ok = r.URL.Query().Get("access_token"), true
	}
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(key)), []byte(s.cfg.APIKey)) == 1
}

// public routes need no API key: the page (which asks for the key) and
// the health check that load balancers poll.
func public(r *http.Request) bool {
	return r.Method == http.MethodGet && (r.URL.Path == "/" || r.URL.Path == "/healthz")
}

// guard applies the Host and API-key checks in front of h, and the write
// deadline.
func (s *Server) guard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.allowedHost(r.Host) {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "host " + strconv.Quote(r.Host) +
				" is not served here (DNS rebinding protection); add it to serve --allowed-hosts"})
			return
		}
		if !public(r) && !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="clipcap"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong API key (Authorization: Bearer KEY)"})
			return
		}
		// Answers must be written soon after the request timeout, however
		// slowly the client reads. Set per request, as net/http keeps a
		// connection's write deadline across keep-alive requests; cleared
		// for the stream, whose connection lives on after the upgrade.
		dl := time.Now().Add(s.cfg.Timeout + 10*time.Second)
		if r.URL.Path == "/v1/stream" {
			dl = time.Time{}
		}
		http.NewResponseController(w).SetWriteDeadline(dl)
		h.ServeHTTP(w, r)
	})
}
