package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/upsproxy/upsproxy/internal/proxy"
	"github.com/upsproxy/upsproxy/internal/vaultstore"
)

// ticketStore keeps the MITM session ticket keys in Vault for
// proxy.RunTicketKeys.
type ticketStore struct {
	store  *vaultstore.Store
	holder string
}

func (t ticketStore) GetTicketKeys(ctx context.Context) (proxy.TicketKeySet, error) {
	k, err := t.store.GetTicketKeys(ctx)
	if err != nil {
		return proxy.TicketKeySet{}, err
	}
	out := proxy.TicketKeySet{RotatedAt: k.RotatedAt, Version: k.Version}
	for _, key := range k.Keys {
		out.Keys = append(out.Keys, key)
	}
	return out, nil
}

func (t ticketStore) PutTicketKeys(ctx context.Context, set proxy.TicketKeySet) error {
	k := vaultstore.TicketKeys{RotatedAt: set.RotatedAt, RotatedBy: t.holder, Version: set.Version}
	for _, key := range set.Keys {
		k.Keys = append(k.Keys, key)
	}
	_, err := t.store.PutTicketKeys(ctx, k)
	if errors.Is(err, vaultstore.ErrConflict) {
		return fmt.Errorf("%w: %w", proxy.ErrTicketKeysConflict, err)
	}
	return err
}
