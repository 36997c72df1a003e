package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// WebhookOptions configure a webhook channel.
type WebhookOptions struct {
	// URL receives a POST of the event as JSON. It is treated as a secret
	// (Slack's and Teams' URLs are the credential): never logged.
	URL string
	// Headers are added to every request (an Authorization header, say);
	// their values are never logged either.
	Headers map[string]string
	// Client sends the requests; nil means one with Timeout that follows
	// no redirect (see NewWebhook).
	Client *http.Client
	// Timeout bounds one delivery attempt. Default 15s.
	Timeout time.Duration
}

// Webhook posts events as JSON: every field of Event, "text" included, so
// Slack- and Teams-style incoming webhooks render the message as is.
type Webhook struct {
	name string
	opts WebhookOptions
	host string
}

// NewWebhook checks the options and returns the channel.
func NewWebhook(name string, o WebhookOptions) (*Webhook, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		// The URL itself may hold the secret: do not echo it.
		return nil, fmt.Errorf("webhook channel %q: the url must be an absolute http(s) URL", name)
	}
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	if o.Client == nil {
		// A redirect is answered as an error, never followed: following
		// one would hand the custom Headers (an API key under any name
		// but Authorization survives a cross-host redirect in net/http)
		// and the secret URL itself (as Referer) to whatever host the
		// answer names.
		o.Client = &http.Client{Timeout: o.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
	}
	return &Webhook{name: name, opts: o, host: u.Host}, nil
}

// Name is the channel's name.
func (w *Webhook) Name() string { return w.name }

// Send posts one event. Any answer but 2xx is an error.
func (w *Webhook) Send(ctx context.Context, ev Event) error {
	body, err := json.Marshal(ev.withText())
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.opts.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook to %s: cannot build the request", w.host)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "upsproxy-notify")
	for k, v := range w.opts.Headers {
		req.Header.Set(k, v)
	}
	resp, err := w.opts.Client.Do(req)
	if err != nil {
		// *url.Error repeats the whole URL, secret path included.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("webhook to %s: %v", w.host, err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook to %s answered %s: %q", w.host, resp.Status, bytes.ToValidUTF8(snippet, nil))
	}
	return nil
}
