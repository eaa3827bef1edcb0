package trigger

import "time"

// SetRenewedAt pretends k's last renewal that reached the store was at t.
func SetRenewedAt(k *Keeper, t time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.renewedAt = t
}
