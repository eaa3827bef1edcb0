package wait

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestSleep(t *testing.T) {
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		d    time.Duration
		want error
	}{
		{"zero does not wait", context.Background(), 0, nil},
		{"negative does not wait", context.Background(), -time.Second, nil},
		{"ended context, no wait", ended, 0, context.Canceled},
		// An hour: the test only finishes because the ended context wins.
		{"ended context wins over the timer", ended, time.Hour, context.Canceled},
		{"short wait", context.Background(), time.Millisecond, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Sleep(tt.ctx, tt.d); !errors.Is(err, tt.want) {
				t.Errorf("Sleep = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestSleepEndsWhenContextEnds: a sleeper wakes when its context is
// cancelled mid-wait, not when the timer fires.
func TestSleepEndsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Sleep(ctx, time.Hour) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Sleep = %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Sleep did not end with its context")
	}
}
