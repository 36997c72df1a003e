package main

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/upsproxy/upsproxy/internal/clienttoken"
)

// loadClientTokenKey gives the proxy the key that signs the OAuth tokens
// it issues its own clients, kept in Vault so every replica accepts every
// other's tokens. One attempt is made before the listener opens, so token
// requests work from the first one; if Vault cannot answer yet, the
// attempts go on in the background (token requests get
// UPSPROXY_TOKEN_STORE_UNAVAILABLE meanwhile, everything else works).
func (d *daemon) loadClientTokenKey(ctx context.Context) {
	if d.tryClientTokenKey(ctx) {
		return
	}
	go func() {
		wait := time.Second
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			if d.tryClientTokenKey(ctx) {
				return
			}
			wait = min(2*wait, time.Minute)
		}
	}()
}

// clientTokenKeyName names the shared Vault key (keys/oauth) that signs the
// OAuth tokens upsproxy issues its clients.
const clientTokenKeyName = "oauth"

func (d *daemon) tryClientTokenKey(ctx context.Context) bool {
	tctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	key, err := d.store.SharedKey(tctx, clientTokenKeyName)
	if err == nil {
		var s *clienttoken.Signer
		if s, err = clienttoken.NewSigner(key); err == nil {
			d.px.SetClientTokenSigner(s)
			d.log.Debug("client token signing key loaded")
			return true
		}
	}
	d.log.Error("cannot load the signing key of client OAuth tokens from Vault; token requests are refused until it loads",
		zap.Error(err))
	return false
}
