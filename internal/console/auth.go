package console

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"
)

// sessionCookie holds the sealed session: HttpOnly, SameSite=Strict,
// Secure when the console is https.
const sessionCookie = "upsproxy_console"

// session is the content of the session cookie. Before sign-in it has an
// ID only (the sign-in form's CSRF token is bound to it); sign-in issues a
// new ID, so a session id planted before sign-in is worthless after it.
type session struct {
	ID   string `json:"i"`
	User string `json:"u,omitempty"`
	// PW fingerprints the user's password hash: changing the password (or
	// removing the user) in the config ends their sessions.
	PW  string `json:"p,omitempty"`
	Exp int64  `json:"e"`
}

type sessState int

const (
	sessNone sessState = iota
	sessForged
	sessExpired
	sessAnon
	sessUser
)

func fingerprint(hash string) string {
	sum := sha256.Sum256([]byte("upsproxy console password " + hash))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// session reads the session cookie.
func (c *Console) session(r *http.Request) (session, sessState) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return session{}, sessNone
	}
	var s session
	if err := c.seal.open(purposeSession, ck.Value, &s); err != nil || s.ID == "" {
		return session{}, sessForged
	}
	if c.now().Unix() >= s.Exp {
		return s, sessExpired
	}
	if s.User == "" {
		return s, sessAnon
	}
	u, ok := c.user(s.User)
	if !ok || fingerprint(u.PasswordHash) != s.PW {
		return s, sessExpired
	}
	return s, sessUser
}

func (c *Console) setSession(w http.ResponseWriter, s session) error {
	v, err := c.seal.seal(purposeSession, s)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: v, Path: c.base + "/", HttpOnly: true,
		Secure: c.secure, SameSite: http.SameSiteStrictMode})
	return nil
}

func (c *Console) clearSession(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: c.base + "/", MaxAge: -1, HttpOnly: true,
		Secure: c.secure, SameSite: http.SameSiteStrictMode})
}

// signedIn returns the signed-in session, or answers the request itself:
// a page load without a session goes to the sign-in page, anything else
// gets a page saying the session is gone and nothing changed.
func (c *Console) signedIn(w http.ResponseWriter, r *http.Request) (session, bool) {
	s, st := c.session(r)
	switch st {
	case sessUser:
		return s, true
	case sessExpired:
		c.clearSession(w)
		if r.Method == http.MethodGet {
			c.signInForm(w, r, http.StatusUnauthorized, "Your session has expired. Sign in again.")
			return session{}, false
		}
		c.problem(w, r, http.StatusUnauthorized, "Session expired",
			"Your session has expired, so nothing was changed. Sign in again and repeat the action.")
		return session{}, false
	}
	if r.Method == http.MethodGet {
		http.Redirect(w, r, c.base+"/login", http.StatusSeeOther)
		return session{}, false
	}
	c.problem(w, r, http.StatusUnauthorized, "Not signed in",
		"You are not signed in to the console, so nothing was changed. Sign in and repeat the action.")
	return session{}, false
}

// csrfOK checks the form's anti-forgery token against the session and
// answers the request when it does not match.
func (c *Console) csrfOK(w http.ResponseWriter, r *http.Request, s session) bool {
	if !c.formOK(w, r) {
		return false
	}
	if c.seal.checkCSRF(s.ID, r.PostFormValue("csrf")) {
		return true
	}
	c.log.Warn("console: form refused: missing or wrong CSRF token", zap.String("user", s.User),
		zap.String("path", r.URL.Path), zap.String("remote", remote(r)))
	c.problem(w, r, http.StatusForbidden, "Form refused",
		"This form was not sent by a console page of your session (its security token is missing or wrong), so nothing was changed. Go back, reload the page and try again.")
	return false
}

// formOK parses the posted form and answers a body over maxForm with its
// own page: unparsed, the form would look empty and be refused for a
// missing CSRF token, sending the user looking in the wrong place.
func (c *Console) formOK(w http.ResponseWriter, r *http.Request) bool {
	var tooLarge *http.MaxBytesError
	if err := r.ParseForm(); !errors.As(err, &tooLarge) {
		return true
	}
	c.log.Warn("console: form refused: too large", zap.String("path", r.URL.Path), zap.String("remote", remote(r)))
	c.problem(w, r, http.StatusRequestEntityTooLarge, "Form too large",
		fmt.Sprintf("The form sent is larger than %d KiB, so nothing was changed. When finishing a login, paste only the address the browser landed on.", maxForm>>10))
	return false
}

func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	if _, st := c.session(r); st == sessUser {
		http.Redirect(w, r, c.base+"/", http.StatusSeeOther)
		return
	}
	c.signInForm(w, r, http.StatusOK, "")
}

// signInForm renders the sign-in page with a fresh anonymous session, to
// which the form's CSRF token is bound.
func (c *Console) signInForm(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s, st := c.session(r)
	if st != sessAnon {
		id, err := randomID()
		if err != nil {
			c.problem(w, r, http.StatusInternalServerError, "Console error", "No random number was available. Try again.")
			return
		}
		s = session{ID: id, Exp: c.now().Add(time.Hour).Unix()}
		if err := c.setSession(w, s); err != nil {
			c.problem(w, r, http.StatusInternalServerError, "Console error", "The session could not be created. Try again.")
			return
		}
	}
	c.render(w, status, "signin.html", page{Title: "Sign in", CSRF: c.seal.csrfToken(s.ID), Error: msg})
}

func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	if !c.formOK(w, r) {
		return
	}
	s, st := c.session(r)
	if st != sessAnon && st != sessUser || !c.seal.checkCSRF(s.ID, r.PostFormValue("csrf")) {
		c.log.Warn("console: sign-in refused: missing or wrong CSRF token", zap.String("remote", remote(r)))
		c.clearSession(w)
		c.problem(w, r, http.StatusForbidden, "Sign-in form expired",
			"The sign-in form was not sent by this console or has expired, so you were not signed in. Open the sign-in page again.")
		return
	}
	name, password := r.PostFormValue("user"), r.PostFormValue("password")
	u, known := c.user(name)
	logName := zap.String("user", name)
	if !known {
		// What was typed may be a password in the wrong field.
		logName = zap.String("user", "(unknown)")
	}
	if wait, ok := c.limits.allow(name, remote(r), c.now()); !ok {
		c.log.Warn("console: sign-in refused: too many attempts", logName, zap.String("remote", remote(r)))
		w.Header().Set("Retry-After", fmt.Sprint(int(math.Ceil(wait.Seconds()))))
		c.render(w, http.StatusTooManyRequests, "signin.html", page{Title: "Sign in", CSRF: c.seal.csrfToken(s.ID),
			Error: fmt.Sprintf("Too many sign-in attempts. Wait %s and try again.", humanWait(wait))})
		return
	}
	hash := c.current().dummyHash
	if known {
		hash = []byte(u.PasswordHash)
	}
	err := bcrypt.CompareHashAndPassword(hash, []byte(password))
	if !known || err != nil || password == "" {
		c.log.Warn("console: sign-in failed: wrong user name or password", logName, zap.String("remote", remote(r)))
		c.render(w, http.StatusUnauthorized, "signin.html", page{Title: "Sign in", CSRF: c.seal.csrfToken(s.ID),
			Error: "Wrong user name or password."})
		return
	}
	id, err := randomID()
	if err == nil {
		err = c.setSession(w, session{ID: id, User: u.Name, PW: fingerprint(u.PasswordHash), Exp: c.now().Add(c.opts.SessionTTL).Unix()})
	}
	if err != nil {
		c.problem(w, r, http.StatusInternalServerError, "Console error", "The session could not be created. Try again.")
		return
	}
	c.log.Info("console: signed in", zap.String("user", u.Name), zap.String("remote", remote(r)))
	http.Redirect(w, r, c.base+"/", http.StatusSeeOther)
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request) {
	s, ok := c.signedIn(w, r)
	if !ok || !c.csrfOK(w, r, s) {
		return
	}
	c.clearSession(w)
	c.log.Info("console: signed out", zap.String("user", s.User), zap.String("remote", remote(r)))
	http.Redirect(w, r, c.base+"/login", http.StatusSeeOther)
}

func humanWait(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%d seconds", int(math.Ceil(d.Seconds())))
	}
	return fmt.Sprintf("%d minutes", int(math.Ceil(d.Minutes())))
}

// limiter bounds sign-in attempts per user name and per source address
// (token buckets in bounded LRU maps, per replica). Every attempt counts,
// successful or not, so guessing cannot hide among successes.
type limiter struct {
	mu               sync.Mutex
	users, addrs     *lru.Cache[string, *rate.Limiter]
	userLim, addrLim rate.Limit
	userB, addrB     int
}

func newLimiter(o Options) *limiter {
	users, _ := lru.New[string, *rate.Limiter](4096)
	addrs, _ := lru.New[string, *rate.Limiter](4096)
	return &limiter{users: users, addrs: addrs, userLim: rate.Every(o.UserEvery), addrLim: rate.Every(o.AddrEvery),
		userB: o.UserBurst, addrB: o.AddrBurst}
}

// allow takes one attempt from both buckets, or says how long to wait.
func (l *limiter) allow(user, addr string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	get := func(m *lru.Cache[string, *rate.Limiter], k string, lim rate.Limit, b int) *rate.Limiter {
		if v, ok := m.Get(k); ok {
			return v
		}
		v := rate.NewLimiter(lim, b)
		m.Add(k, v)
		return v
	}
	u := get(l.users, user, l.userLim, l.userB)
	a := get(l.addrs, addr, l.addrLim, l.addrB)
	ru, ra := u.ReserveN(now, 1), a.ReserveN(now, 1)
	wait := max(ru.DelayFrom(now), ra.DelayFrom(now))
	if wait > 0 {
		ru.CancelAt(now)
		ra.CancelAt(now)
		return wait, false
	}
	return 0, true
}
