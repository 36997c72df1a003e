package console

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/upsproxy/upsproxy/internal/login"
	"github.com/upsproxy/upsproxy/internal/tokens"
	"github.com/upsproxy/upsproxy/internal/ups"
)

// loginState is sealed into the OAuth state parameter: what the callback
// needs to finish the login on any replica, including the PKCE verifier
// (encrypted: it must not be readable in the URL), bound to the browser
// session that started it.
type loginState struct {
	Nonce    string `json:"n"`
	Session  string `json:"s"`
	User     string `json:"u"`
	Carrier  string `json:"c"`
	Env      string `json:"e"`
	Verifier string `json:"v,omitempty"`
	Exp      int64  `json:"x"`
}

// pendingCookie names the cookie that holds the state of the login this
// browser started for a carrier. It is SameSite=Lax, not Strict: browsers
// withhold Strict cookies on the redirect back from UPS's (other) site.
// It is cleared when the login completes, so a replayed callback finds
// nothing to complete.
func pendingCookie(carrier, env string) string { return "upsproxy_login_" + carrier + "_" + env }

func (c *Console) setPending(w http.ResponseWriter, carrier, env, state string) {
	http.SetCookie(w, &http.Cookie{Name: pendingCookie(carrier, env), Value: state, Path: c.base + "/",
		MaxAge: int(c.opts.LoginTTL / time.Second), HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode})
}

func (c *Console) clearPending(w http.ResponseWriter, carrier, env string) {
	http.SetCookie(w, &http.Cookie{Name: pendingCookie(carrier, env), Path: c.base + "/", MaxAge: -1,
		HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode})
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	s, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	rows := c.rows(r.Context(), c.current().Carriers)
	c.render(w, http.StatusOK, "overview.html", page{Title: "Carriers", User: s.User, CSRF: c.seal.csrfToken(s.ID),
		Data: struct {
			Rows       []row
			WarnBefore string
			Callback   string
		}{rows, humanDays(c.current().WarnBefore), c.callbackURL()}})
}

func humanDays(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}

// carrierFor finds the carrier of a /carriers/{carrier}/{env} path, or
// answers 404.
func (c *Console) carrierFor(w http.ResponseWriter, r *http.Request) (Carrier, bool) {
	car, ok := c.carrier(r.PathValue("carrier"), r.PathValue("env"))
	if !ok {
		c.problem(w, r, http.StatusNotFound, "Unknown carrier",
			"The configuration has no such carrier and environment, so nothing was changed.")
	}
	return car, ok
}

func (c *Console) carrierPage(w http.ResponseWriter, r *http.Request) {
	s, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	car, ok := c.carrierFor(w, r)
	if !ok {
		return
	}
	c.showCarrier(w, r, s, car, http.StatusOK, "", "")
}

// showCarrier renders the carrier page, with the outcome of an action.
func (c *Console) showCarrier(w http.ResponseWriter, r *http.Request, s session, car Carrier, status int, notice, problem string) {
	rows := c.rows(r.Context(), []Carrier{car})
	if car.OAuth != nil && car.Grant != ups.GrantClientCredentials {
		w.Header().Set("Content-Security-Policy", c.csp(true))
	}
	_, pending := r.Cookie(pendingCookie(car.Name, string(car.Environment)))
	c.render(w, status, "carrier.html", page{Title: car.Name + " (" + string(car.Environment) + ")", User: s.User,
		CSRF: c.seal.csrfToken(s.ID), Notice: notice, Error: problem,
		Data: struct {
			Row      row
			Pending  bool
			Callback string
		}{rows[0], pending == nil, c.callbackURL()}})
}

// actionCarrier is the common start of every action on a carrier: signed
// in, CSRF token checked, carrier known.
func (c *Console) actionCarrier(w http.ResponseWriter, r *http.Request) (session, Carrier, bool) {
	s, ok := c.signedIn(w, r)
	if !ok || !c.csrfOK(w, r, s) {
		return session{}, Carrier{}, false
	}
	car, ok := c.carrierFor(w, r)
	return s, car, ok
}

func (c *Console) logFields(r *http.Request, s session, car Carrier) []zap.Field {
	return []zap.Field{zap.String("user", s.User), zap.String("carrier", car.Name),
		zap.String("environment", string(car.Environment)), zap.String("remote", remote(r))}
}

func target(car Carrier) login.Target {
	return login.Target{Carrier: car.Name, Environment: car.Environment, Grant: car.Grant}
}

// startLogin sends the browser to UPS's login page with a sealed state.
func (c *Console) startLogin(w http.ResponseWriter, r *http.Request) {
	s, car, ok := c.actionCarrier(w, r)
	if !ok {
		return
	}
	if !c.canLogin(w, r, s, car) {
		return
	}
	if err := c.opts.Login.CheckStore(r.Context(), target(car)); err != nil {
		c.log.Error("console: UPS login not started: Vault is unavailable", append(c.logFields(r, s, car), zap.Error(err))...)
		c.showCarrier(w, r, s, car, http.StatusServiceUnavailable, "", "The login was not started: "+err.Error())
		return
	}
	nonce, err := randomID()
	if err != nil {
		c.problem(w, r, http.StatusInternalServerError, "Console error", "No random number was available. Try again.")
		return
	}
	a, err := login.Authorize(car.OAuth, func(verifier string) (string, error) {
		return c.seal.seal(purposeState, loginState{Nonce: nonce, Session: s.ID, User: s.User, Carrier: car.Name,
			Env: string(car.Environment), Verifier: verifier, Exp: c.now().Add(c.opts.LoginTTL).Unix()})
	})
	if err != nil {
		c.problem(w, r, http.StatusInternalServerError, "Console error", "The login could not be started: "+err.Error())
		return
	}
	c.setPending(w, car.Name, string(car.Environment), a.State)
	c.log.Info("console: UPS login started", append(c.logFields(r, s, car), zap.Bool("pkce", a.Verifier != ""))...)
	http.Redirect(w, r, a.URL, http.StatusSeeOther)
}

func (c *Console) canLogin(w http.ResponseWriter, r *http.Request, s session, car Carrier) bool {
	if car.Grant == ups.GrantClientCredentials || car.OAuth == nil {
		c.showCarrier(w, r, s, car, http.StatusBadRequest, "",
			"This carrier uses client credentials: the proxy gets its tokens by itself, no UPS login is needed.")
		return false
	}
	return true
}

// callback is where UPS sends the browser back: the state must be one this
// console sealed, not expired, and the one this browser's pending login
// cookie holds; then the code is exchanged and the pair stored.
func (c *Console) callback(w http.ResponseWriter, r *http.Request) {
	raw := r.URL.Query().Get("state")
	var st loginState
	if err := c.seal.open(purposeState, raw, &st); err != nil {
		c.log.Warn("console: OAuth callback refused: state not issued by this console", zap.String("remote", remote(r)))
		c.problem(w, r, http.StatusBadRequest, "Login refused",
			"The address UPS sent you back with does not belong to a login started in this console (its state is missing or forged), so nothing was changed. Start the login again from the carrier's page.")
		return
	}
	car, known := c.carrier(st.Carrier, st.Env)
	fields := []zap.Field{zap.String("user", st.User), zap.String("carrier", st.Carrier), zap.String("environment", st.Env), zap.String("remote", remote(r))}
	ck, err := r.Cookie(pendingCookie(st.Carrier, st.Env))
	if err != nil || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(raw)) != 1 {
		c.log.Warn("console: OAuth callback refused: no such login pending in this browser (replayed or foreign)", fields...)
		c.problem(w, r, http.StatusBadRequest, "Login already completed or not started here",
			"This login was already completed, or it was not started in this browser, so nothing was changed. Open the carrier's page to see its state, or start a new login there.")
		return
	}
	c.clearPending(w, st.Carrier, st.Env)
	if sess, sst := c.session(r); sst == sessUser && sess.ID != st.Session {
		c.log.Warn("console: OAuth callback refused: state belongs to another session", fields...)
		c.problem(w, r, http.StatusBadRequest, "Login refused",
			"This login was started in another console session, so nothing was changed. Start the login again.")
		return
	}
	c.finish(w, r, st, car, known, "?"+r.URL.RawQuery, raw, nil, fields)
}

// finish checks a pending login's state, parses the redirect (the parser
// of `upsproxy login --url`, which here insists on the state), exchanges the code and stores the
// pair; it renders the outcome.
//
// consume, when not nil, ends the pending login once the redirect parsed:
// a mistyped paste does not cost the login.
func (c *Console) finish(w http.ResponseWriter, r *http.Request, st loginState, car Carrier, known bool, pasted, raw string, consume func(), fields []zap.Field) {
	if c.now().Unix() >= st.Exp {
		c.log.Warn("console: UPS login refused: it took too long", fields...)
		c.problem(w, r, http.StatusBadRequest, "Login expired",
			"This login was started too long ago, so nothing was changed. Start the login again from the carrier's page.")
		return
	}
	u, ok := c.user(st.User)
	if !ok || !known || car.OAuth == nil || car.Grant == ups.GrantClientCredentials {
		c.log.Warn("console: UPS login refused: user or carrier no longer configured", fields...)
		c.problem(w, r, http.StatusBadRequest, "Login refused",
			"The user or carrier of this login is no longer in the configuration, so nothing was changed.")
		return
	}
	// The state is required, not only checked when present: a code
	// without it cannot be tied to this login.
	code, err := ups.ParseRedirectWithState(pasted, raw)
	if err != nil {
		c.log.Warn("console: UPS login failed: unusable redirect", append(fields, zap.String("reason", err.Error()))...)
		c.problem(w, r, http.StatusBadRequest, "Login not completed", "Nothing was stored: "+err.Error()+".")
		return
	}
	if consume != nil {
		consume()
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	tok, err := c.opts.Login.Complete(ctx, car.OAuth, target(car), code, st.Verifier, "console:"+u.Name)
	if err != nil {
		c.log.Error("console: UPS login failed", append(fields, zap.Error(err))...)
		// The pending login is consumed and UPS may have spent the code:
		// only a new login can finish, and the page must say so.
		c.problem(w, r, http.StatusBadGateway, "Login not completed", "Nothing was stored: "+err.Error()+
			". This login has ended. Start the login again from the carrier's page.")
		return
	}
	c.log.Info("console: UPS login completed: new tokens stored", append(fields,
		zap.Time("refresh_token_expires", tok.RefreshExpiresAt))...)
	c.render(w, http.StatusOK, "done.html", page{Title: "Logged in", User: u.Name,
		Notice: fmt.Sprintf("Logged in to UPS: carrier %s (%s). The refresh token expires %s (%d days).", car.Name, car.Environment,
			fmtTime(tok.RefreshExpiresAt), tokens.DaysLeft(tok.RefreshExpiresAt, c.now())),
		Data: c.base + "/carriers/" + car.Name + "/" + string(car.Environment)})
}

// pasteRedirect is the fallback when UPS's redirect does not come back to
// the console: the manager pastes the address the browser landed on.
func (c *Console) pasteRedirect(w http.ResponseWriter, r *http.Request) {
	s, car, ok := c.actionCarrier(w, r)
	if !ok || !c.canLogin(w, r, s, car) {
		return
	}
	env := string(car.Environment)
	fields := c.logFields(r, s, car)
	ck, err := r.Cookie(pendingCookie(car.Name, env))
	var st loginState
	if err == nil {
		err = c.seal.open(purposeState, ck.Value, &st)
	}
	if err != nil || st.Carrier != car.Name || st.Env != env {
		c.log.Warn("console: pasted redirect refused: no login pending in this browser", fields...)
		c.showCarrier(w, r, s, car, http.StatusBadRequest, "",
			"No login of this carrier is pending in this browser, so nothing was changed. Click \"Log in to UPS\" first, then paste the address you land on.")
		return
	}
	if st.Session != s.ID {
		c.log.Warn("console: pasted redirect refused: login belongs to another session", fields...)
		c.showCarrier(w, r, s, car, http.StatusBadRequest, "", "This login was started in another console session, so nothing was changed. Start the login again.")
		return
	}
	c.finish(w, r, st, car, true, r.PostFormValue("redirect_url"), ck.Value,
		func() { c.clearPending(w, car.Name, env) }, fields)
}

// refresh renews the carrier's tokens now through the broker, coordinated
// with the other replicas as `upsproxy token refresh` is.
func (c *Console) refresh(w http.ResponseWriter, r *http.Request) {
	s, car, ok := c.actionCarrier(w, r)
	if !ok {
		return
	}
	fields := c.logFields(r, s, car)
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	rec, err := c.opts.Refresher.ForceRefresh(ctx, car.Name, car.Environment)
	if err != nil {
		code := ""
		if c.opts.ErrorCode != nil {
			code = c.opts.ErrorCode(err)
		}
		c.log.Warn("console: refresh failed", append(fields, zap.String("code", code), zap.Error(err))...)
		msg := "The refresh failed"
		if code != "" {
			msg += " (" + code + ")"
		}
		c.showCarrier(w, r, s, car, http.StatusBadGateway, "", msg+": "+err.Error())
		return
	}
	c.log.Info("console: tokens refreshed", append(fields, zap.Int("refresh_count", rec.Token.RefreshCount))...)
	c.showCarrier(w, r, s, car, http.StatusOK, fmt.Sprintf("Refreshed: refresh count %d, access token expires %s.",
		rec.Token.RefreshCount, fmtTime(rec.Token.ExpiresAt)), "")
}

func (c *Console) confirmDelete(w http.ResponseWriter, r *http.Request) {
	s, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	car, ok := c.carrierFor(w, r)
	if !ok || !c.canLogin(w, r, s, car) {
		return
	}
	rows := c.rows(r.Context(), []Carrier{car})
	c.render(w, http.StatusOK, "delete.html", page{Title: "Delete tokens", User: s.User, CSRF: c.seal.csrfToken(s.ID), Data: rows[0]})
}

func (c *Console) deleteTokens(w http.ResponseWriter, r *http.Request) {
	s, car, ok := c.actionCarrier(w, r)
	if !ok || !c.canLogin(w, r, s, car) {
		return
	}
	fields := c.logFields(r, s, car)
	if r.PostFormValue("confirm") != "yes" {
		c.showCarrier(w, r, s, car, http.StatusBadRequest, "", "The deletion was not confirmed, so nothing was deleted.")
		return
	}
	old, err := c.opts.Login.Delete(r.Context(), car.Name, car.Environment)
	switch {
	case errors.Is(err, login.ErrNothingStored):
		c.showCarrier(w, r, s, car, http.StatusNotFound, "", "No tokens were stored for this carrier: nothing was deleted.")
		return
	case err != nil:
		c.log.Error("console: deleting tokens failed", append(fields, zap.Error(err))...)
		c.showCarrier(w, r, s, car, http.StatusServiceUnavailable, "", "Nothing was deleted: "+err.Error())
		return
	}
	count := 0
	if old != nil {
		count = old.Token.RefreshCount
	}
	c.log.Info("console: tokens deleted", append(fields, zap.Int("refresh_count", count))...)
	c.showCarrier(w, r, s, car, http.StatusOK, "Deleted the stored tokens. The proxy answers UPSPROXY_NOT_LOGGED_IN for this carrier once its access token in memory runs out, until someone logs in again.", "")
}
