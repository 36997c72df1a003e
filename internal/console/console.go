// Package console is the web console of `upsproxy serve`: shipping
// managers who own the UPS login see every carrier's token state and renew
// from a browser. It keeps nothing in memory that another replica would
// need: sessions and login state are sealed (AES-GCM) under a key every
// replica reads from Vault, so any replica serves any step of a login
// behind a load balancer without sticky sessions. Pages are server-rendered
// and work without JavaScript.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/upsproxy/upsproxy/internal/login"
	"github.com/upsproxy/upsproxy/internal/tokens"
	"github.com/upsproxy/upsproxy/internal/ups"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Store reads the stored token records.
type Store interface {
	Get(ctx context.Context, carrier string, env ups.Environment) (vaultstore.Record, error)
}

// Refresher renews a carrier's tokens now, coordinated with the other
// replicas, and reports what this replica knows of past refreshes (the
// token broker of `upsproxy serve`).
type Refresher interface {
	ForceRefresh(ctx context.Context, carrier string, env ups.Environment) (vaultstore.Record, error)
	Status() []tokens.Status
}

// Carrier is one carrier and environment the console shows.
type Carrier struct {
	Name        string
	Environment ups.Environment
	Grant       string
	Inactive    bool
	// RedirectURI is where UPS sends the browser after its login.
	RedirectURI string
	// OAuth starts and finishes its logins (authorization_code only).
	OAuth login.OAuth
}

// User may sign in.
type User struct {
	Name         string
	PasswordHash string // bcrypt
}

// Settings are what a config reload may change.
type Settings struct {
	Users    []User
	Carriers []Carrier
	// WarnBefore: rows whose refresh token expires within it stand out
	// (reminders.warn_before).
	WarnBefore time.Duration
}

// Options configure a Console.
type Options struct {
	Logger *zap.Logger
	Clock  func() time.Time
	// PublicURL is the address browsers use; its path is the base path.
	PublicURL *url.URL
	// Key is the secret shared by every replica (vaultstore.SharedKey).
	Key       []byte
	Store     Store
	Login     *login.Service
	Refresher Refresher
	Settings  Settings
	// ErrorCode maps a token error to its client-facing code (the proxy's
	// one mapper, proxy.TokenErrorCode); nil shows no codes.
	ErrorCode func(error) string
	// SessionTTL is how long a sign-in lasts. Default 8 hours.
	SessionTTL time.Duration
	// LoginTTL is how long a started UPS login may take. Default 15 minutes.
	LoginTTL time.Duration
	// Sign-in attempts: a burst of UserBurst per user name, then one every
	// UserEvery; the same per source address with AddrBurst/AddrEvery.
	// Defaults 5 and 1 minute, 20 and 10 seconds.
	UserBurst int
	UserEvery time.Duration
	AddrBurst int
	AddrEvery time.Duration
}

// Console serves the console's pages.
type Console struct {
	opts     Options
	log      *zap.Logger
	now      func() time.Time
	base     string
	secure   bool
	seal     *sealer
	settings atomic.Pointer[settings]
	pages    *template.Template
	mux      *http.ServeMux
	limits   *limiter
}

// settings are the current Settings and a dummy hash of the users' bcrypt
// cost: a sign-in with an unknown user name is checked against it, as
// slow as one with a wrong password, so timing does not tell which names
// exist.
type settings struct {
	Settings
	dummyHash []byte
}

// New checks the options and builds the console.
func New(opts Options) (*Console, error) {
	if opts.PublicURL == nil || opts.Store == nil || opts.Login == nil || opts.Refresher == nil {
		return nil, errors.New("console: PublicURL, Store, Login and Refresher are required")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 8 * time.Hour
	}
	if opts.LoginTTL <= 0 {
		opts.LoginTTL = 15 * time.Minute
	}
	if opts.UserBurst <= 0 {
		opts.UserBurst = 5
	}
	if opts.UserEvery <= 0 {
		opts.UserEvery = time.Minute
	}
	if opts.AddrBurst <= 0 {
		opts.AddrBurst = 20
	}
	if opts.AddrEvery <= 0 {
		opts.AddrEvery = 10 * time.Second
	}
	seal, err := newSealer(opts.Key)
	if err != nil {
		return nil, err
	}
	pages, err := template.New("").Funcs(template.FuncMap{"time": fmtTime}).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("console templates: %w", err)
	}
	c := &Console{
		opts: opts, log: opts.Logger, now: opts.Clock, seal: seal, pages: pages,
		base:   strings.TrimSuffix(opts.PublicURL.Path, "/"),
		secure: opts.PublicURL.Scheme == "https",
		limits: newLimiter(opts),
	}
	c.Update(opts.Settings)
	c.routes()
	return c, nil
}

// Update replaces the users, carriers and warning window (config reload).
// Sessions of users who are gone or whose password changed end.
func (c *Console) Update(s Settings) {
	cost := bcrypt.DefaultCost
	if len(s.Users) > 0 {
		if n, err := bcrypt.Cost([]byte(s.Users[0].PasswordHash)); err == nil {
			cost = n
		}
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("upsproxy console dummy"), cost)
	if err != nil {
		// Only a cost out of range fails, which config validation excludes.
		dummy = []byte(s.Users[0].PasswordHash)
	}
	c.settings.Store(&settings{Settings: s, dummyHash: dummy})
}

func (c *Console) current() *settings { return c.settings.Load() }

func (c *Console) carrier(name, env string) (Carrier, bool) {
	for _, car := range c.current().Carriers {
		if car.Name == name && string(car.Environment) == env {
			return car, true
		}
	}
	return Carrier{}, false
}

func (c *Console) user(name string) (User, bool) {
	for _, u := range c.current().Users {
		if u.Name == name {
			return u, true
		}
	}
	return User{}, false
}

func (c *Console) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /{$}", c.overview)
	m.HandleFunc("GET /login", c.signInPage)
	m.HandleFunc("POST /login", c.signIn)
	m.HandleFunc("POST /logout", c.signOut)
	m.HandleFunc("GET /callback", c.callback)
	m.HandleFunc("GET /carriers/{carrier}/{env}", c.carrierPage)
	m.HandleFunc("POST /carriers/{carrier}/{env}/login", c.startLogin)
	m.HandleFunc("POST /carriers/{carrier}/{env}/paste", c.pasteRedirect)
	m.HandleFunc("POST /carriers/{carrier}/{env}/refresh", c.refresh)
	m.HandleFunc("GET /carriers/{carrier}/{env}/delete", c.confirmDelete)
	m.HandleFunc("POST /carriers/{carrier}/{env}/delete", c.deleteTokens)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c.problem(w, r, http.StatusNotFound, "Page not found", "There is no such page in the console.")
	})
	c.mux = m
}

// ServeHTTP serves the console under the base path of the public URL, with
// the security headers on every answer.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Content-Security-Policy", c.csp(false))
	if c.secure {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	if !strings.HasPrefix(r.URL.Path, c.base+"/static/") {
		h.Set("Cache-Control", "no-store")
	}
	if c.base != "" {
		rest, ok := strings.CutPrefix(r.URL.Path, c.base)
		if !ok || (rest != "" && rest[0] != '/') {
			c.problem(w, r, http.StatusNotFound, "Page not found", "There is no such page in the console.")
			return
		}
		if rest == "" {
			http.Redirect(w, r, c.base+"/", http.StatusSeeOther)
			return
		}
		r2 := new(http.Request)
		*r2 = *r
		u := *r.URL
		u.Path, u.RawPath = rest, ""
		r2.URL = &u
		r = r2
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	c.mux.ServeHTTP(w, r)
}

// maxForm caps a request body: the largest form, a pasted redirect URL,
// is at most 8 KiB (ups.ParseRedirect's own limit).
const maxForm = 64 << 10

// csp is the Content-Security-Policy: no script at all, styles and images
// from the console only, forms posting to the console. A page that starts
// a UPS login (loginPage) has no form-action: browsers apply it to every
// redirect that follows the post, and UPS's login passes through several
// UPS hosts before it reaches the carrier's redirect URI, which may be
// anywhere.
func (c *Console) csp(loginPage bool) string {
	form := "; form-action 'self'"
	if loginPage {
		form = ""
	}
	return "default-src 'none'; style-src 'self'; img-src 'self'" + form + "; frame-ancestors 'none'; base-uri 'none'"
}

// page is what every template gets.
type page struct {
	Title  string
	Base   string
	User   string
	CSRF   string
	Notice string
	Error  string
	// Data is the page's own content.
	Data any
}

// render writes a page. A template error is logged and answered with a
// plain 500: the page may be half-written.
func (c *Console) render(w http.ResponseWriter, status int, name string, p page) {
	p.Base = c.base
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := c.pages.ExecuteTemplate(w, name, p); err != nil {
		c.log.Error("console page failed to render", zap.String("page", name), zap.Error(err))
	}
}

// problem is the one way the console refuses: a page saying what happened
// and that nothing was changed.
func (c *Console) problem(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	p := page{Title: title, Error: msg}
	if s, st := c.session(r); st == sessUser {
		p.User = s.User
		p.CSRF = c.seal.csrfToken(s.ID)
	}
	c.render(w, status, "problem.html", p)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// remote is the client address for logs and rate limits.
func remote(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i > 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}
