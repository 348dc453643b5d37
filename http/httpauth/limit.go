package httpauth

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ferrymigrate/ferry"
)

// Limiter is a set of token buckets, one per key (an API key, a remote
// address): each holds up to Burst tokens and refills at Rate per second; a
// request takes one token or is refused with the time until one is back.
type Limiter struct {
	Rate  float64
	Burst int

	mu      sync.Mutex
	buckets map[string]*bucket
	calls   int
}

type bucket struct {
	tokens float64
	at     time.Time
}

// NewLimiter returns a limiter of rate requests per second per key with the
// given burst (at least 1).
func NewLimiter(rate float64, burst int) *Limiter {
	return &Limiter{Rate: rate, Burst: max(burst, 1), buckets: map[string]*bucket{}}
}

// Take takes a token of key's bucket at now. It reports whether the request
// may go on, the whole tokens left, and, when refused, how long until a
// token is back.
func (l *Limiter) Take(key string, now time.Time) (ok bool, remaining int, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	if l.calls%4096 == 0 {
		l.prune(now)
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: float64(l.Burst), at: now}
		l.buckets[key] = b
	}
	if el := now.Sub(b.at).Seconds(); el > 0 {
		b.tokens = math.Min(float64(l.Burst), b.tokens+el*l.Rate)
		b.at = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, int(b.tokens), 0
	}
	wait := time.Duration((1 - b.tokens) / l.Rate * float64(time.Second))
	return false, 0, wait
}

// prune drops the buckets that have refilled completely: they hold nothing a
// fresh bucket would not.
func (l *Limiter) prune(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.at).Seconds()*l.Rate >= float64(l.Burst) {
			delete(l.buckets, k)
		}
	}
}

// Limits are the request limits an Authenticator enforces.
type Limits struct {
	// PerKey is the number of requests per second one API key (or token)
	// may make, with a burst of twice as many; 0 turns the limit off.
	PerKey float64
	// FailedPerAddr is the number of failed authentications per second one
	// remote address may make (burst 10×), against password guessing; 0
	// turns it off.
	FailedPerAddr float64
}

// SetLimits makes a's Check enforce l.
func (a *Authenticator) SetLimits(l Limits) {
	a.perKey, a.failed = nil, nil
	if l.PerKey > 0 {
		a.perKey = NewLimiter(l.PerKey, int(math.Ceil(2*l.PerKey)))
	}
	if l.FailedPerAddr > 0 {
		a.failed = NewLimiter(l.FailedPerAddr, int(math.Ceil(10*l.FailedPerAddr)))
	}
}

// Check authenticates r like Authenticate and then applies the rate limits:
// it sets the RateLimit-Limit and RateLimit-Remaining headers on w and, when
// a limit is exceeded, Retry-After, and returns an ERATELIMIT error the
// dialect renders as its own 429 body.
func (a *Authenticator) Check(w http.ResponseWriter, r *http.Request) (*ferry.Principal, error) {
	return a.check(w, r, func() (*ferry.Principal, error) { return a.Authenticate(r) }, hasCredentials(r))
}

// CheckKeyPair is Check for a key pair a request carries in its body (the
// OAuth client credentials grant, the IAM password token call): a wrong pair
// counts against the remote address's failed-authentication limit and a
// right one against the key's request limit.
func (a *Authenticator) CheckKeyPair(w http.ResponseWriter, r *http.Request, public, private string) (*ferry.Principal, error) {
	return a.check(w, r, func() (*ferry.Principal, error) { return a.Service.AuthenticateKey(r.Context(), public, private) }, true)
}

func (a *Authenticator) check(w http.ResponseWriter, r *http.Request, authenticate func() (*ferry.Principal, error), credentials bool) (*ferry.Principal, error) {
	now := time.Now()
	addr := remoteAddr(r)
	if a.failed != nil {
		a.failed.mu.Lock()
		b := a.failed.buckets[addr]
		blocked := b != nil && b.tokens+now.Sub(b.at).Seconds()*a.failed.Rate < 1
		a.failed.mu.Unlock()
		if blocked {
			return nil, limited(w, a.failed, 0, "too many failed authentications from this address", time.Second)
		}
	}
	p, err := authenticate()
	if err != nil {
		if cerr := r.Context().Err(); cerr != nil {
			// The client went away while its key was looked up: not a
			// failed authentication.
			return nil, fmt.Errorf("authenticate: %w", cerr)
		}
		if a.failed != nil && ferry.ErrorCode(err) == ferry.EUNAUTHORIZED && credentials {
			a.failed.Take(addr, now)
		}
		return nil, err
	}
	if a.perKey == nil || p.System {
		return p, nil
	}
	key := p.KeyID
	if key == "" {
		key = "pub:" + p.PublicKey
	}
	ok, remaining, wait := a.perKey.Take(key, now)
	if !ok {
		return nil, limited(w, a.perKey, remaining, fmt.Sprintf("rate limit of %s requests per second for this API key exceeded", strconv.FormatFloat(a.perKey.Rate, 'f', -1, 64)), wait)
	}
	w.Header().Set("RateLimit-Limit", strconv.Itoa(a.perKey.Burst))
	w.Header().Set("RateLimit-Remaining", strconv.Itoa(remaining))
	return p, nil
}

func limited(w http.ResponseWriter, l *Limiter, remaining int, msg string, wait time.Duration) error {
	secs := max(1, int(math.Ceil(wait.Seconds())))
	h := w.Header()
	h.Set("RateLimit-Limit", strconv.Itoa(l.Burst))
	h.Set("RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("Retry-After", strconv.Itoa(secs))
	return &ferry.Error{Code: ferry.ERATELIMIT, Message: msg,
		Advice: fmt.Sprintf("retry after %d s", secs)}
}

func hasCredentials(r *http.Request) bool {
	return r.Header.Get("Authorization") != "" || r.Header.Get("X-Auth-Token") != ""
}

func remoteAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
