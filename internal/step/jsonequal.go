package step

import (
	"encoding/json"
	"math/big"
	"strconv"
	"strings"
)

// maxExponent bounds the exponents compared exactly: big.Rat expands 1e999999999
// into a huge integer, and the numbers come from a server we do not trust.
const maxExponent = 400

func numberEqual(x, y string) bool {
	if x == y {
		return true
	}
	if hugeExponent(x) || hugeExponent(y) {
		return false
	}
	rx, okx := new(big.Rat).SetString(x)
	ry, oky := new(big.Rat).SetString(y)
	return okx && oky && rx.Cmp(ry) == 0
}

func hugeExponent(n string) bool {
	i := strings.IndexAny(n, "eE")
	if i < 0 {
		return false
	}
	e, err := strconv.Atoi(n[i+1:])
	return err != nil || e > maxExponent || e < -maxExponent
}

// jsonEqual compares two decoded JSON values; numbers compare by value
// (1, 1.0 and 1e0 are equal), objects ignore key order.
func jsonEqual(a, b any) bool {
	switch x := a.(type) {
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		return numberEqual(string(x), string(y))
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !jsonEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !jsonEqual(v, w) {
				return false
			}
		}
		return true
	default:
		return a == b
	}
}
