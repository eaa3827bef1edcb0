package engine

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/zof-ai/zof-ci/api"
)

// fill sets every field reachable from v to a non-zero value: each slice and
// map gets two elements, each pointer a value. seed makes the values differ.
func fill(t *testing.T, v reflect.Value, seed *int) {
	t.Helper()
	*seed++
	n := *seed
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		if v.Type() == reflect.TypeFor[time.Duration]() || v.Type() == reflect.TypeFor[api.Duration]() {
			v.SetInt(int64(n) * int64(time.Second))
			return
		}
		v.SetInt(int64(n))
	case reflect.Float64:
		v.SetFloat(float64(n))
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(t, p.Elem(), seed)
		v.Set(p)
	case reflect.Slice:
		if v.Type() == reflect.TypeFor[json.RawMessage]() {
			v.SetBytes([]byte(fmt.Sprintf(`{"n":%d}`, n)))
			return
		}
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(t, s.Index(i), seed)
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for range 2 {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(t, k, seed)
			fill(t, e, seed)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 1, n%28+1, 0, 0, 0, 0, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(t, v.Field(i), seed)
			}
		}
	default:
		t.Fatalf("fill: no rule for %s (%s): teach fill and cloneRequest about it", v.Type(), v.Kind())
	}
}

// shared reports the first slice, map or pointer that a and b (deeply equal
// values of one type) share, by its path.
func shared(a, b reflect.Value, path string) string {
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() {
			return ""
		}
		if a.Pointer() == b.Pointer() {
			return path
		}
		return shared(a.Elem(), b.Elem(), path)
	case reflect.Slice:
		if a.Len() == 0 {
			return ""
		}
		if a.Pointer() == b.Pointer() {
			return path
		}
		for i := range a.Len() {
			if p := shared(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i)); p != "" {
				return p
			}
		}
	case reflect.Map:
		if a.Len() == 0 {
			return ""
		}
		if a.Pointer() == b.Pointer() {
			return path
		}
		for _, k := range a.MapKeys() {
			if p := shared(a.MapIndex(k), b.MapIndex(k), fmt.Sprintf("%s[%v]", path, k)); p != "" {
				return p
			}
		}
	case reflect.Struct:
		for i := range a.NumField() {
			if a.Type().Field(i).IsExported() {
				if p := shared(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name); p != "" {
					return p
				}
			}
		}
	}
	return ""
}

// A request with every field set is copied whole and shares nothing with the
// original, so a caller may change theirs after Create. A field added to the
// request types later is filled too: the test fails until cloneRequest copies it.
func TestCloneRequestSharesNothing(t *testing.T) {
	var req api.RunRequest
	seed := 0
	fill(t, reflect.ValueOf(&req).Elem(), &seed)
	got := cloneRequest(&req)
	if !reflect.DeepEqual(got, &req) {
		t.Fatalf("the copy differs from the request:\n got %+v\nwant %+v", got, &req)
	}
	if p := shared(reflect.ValueOf(got).Elem(), reflect.ValueOf(&req).Elem(), "RunRequest"); p != "" {
		t.Fatalf("the copy shares %s with the request", p)
	}
	// The copy's slices share arrays (cloneRequest's slab) but each is capped
	// at its length: appending to one never writes into its neighbour.
	again := cloneRequest(&req)
	c0 := &got.Cases[0]
	c0.Tags = append(c0.Tags, "x")
	c0.Steps = append(c0.Steps, api.Step{Name: "x"})
	x := c0.Steps[0].Expect
	x.Status = append(x.Status, "x")
	x.BodyContains = append(x.BodyContains, "x")
	if !reflect.DeepEqual(got.Cases[1], again.Cases[1]) || !reflect.DeepEqual(c0.Steps[1], again.Cases[0].Steps[1]) {
		t.Fatal("appending to one case's copied slices changed another's")
	}
	got = again
	// And it stays what JSON says: the wire form of the copy is the request's.
	a, _ := json.Marshal(&req)
	b, _ := json.Marshal(got)
	if string(a) != string(b) {
		t.Fatalf("the copy encodes differently:\n%s\n%s", b, a)
	}
}

// An empty request copies as empty: nil stays nil.
func TestCloneRequestEmpty(t *testing.T) {
	var req api.RunRequest
	if got := cloneRequest(&req); !reflect.DeepEqual(got, &req) {
		t.Fatalf("got %+v", got)
	}
}
