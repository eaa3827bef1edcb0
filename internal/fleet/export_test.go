package fleet

// Waiting counts the held polls of a pool.
func (f *Fleet) Waiting(tenant, pool string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pools[poolKey{tenant, pool}].waiters)
}

// Queued counts the attempts waiting in a pool's queue.
func (f *Fleet) Queued(tenant, pool string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pools[poolKey{tenant, pool}].queue)
}
