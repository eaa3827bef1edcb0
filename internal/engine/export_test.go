package engine

// Kick makes the scheduler take a pass now, so tests with a fake clock need
// not wait for a timer.
func (e *Engine) Kick() { e.kick() }
