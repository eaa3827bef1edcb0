// Command app is the checkout service the example suite (../zof.yaml) tests:
// a small HTTP API with an in-memory store, standard library only.
//
//	go run ./examples/checkout/app -addr 127.0.0.1:8089
//
// CHECKOUT_BUG=price makes cart totals wrong on purpose, so the suite has
// something to catch.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Version is what GET /api/version reports.
const Version = "1.4.2"

// defaultAddr matches the url of the suite's local environment.
const defaultAddr = "127.0.0.1:8089"

func main() {
	addr := flag.String("addr", defaultAddr, "address to listen on (host:port; port 0 picks a free one)")
	flag.Parse()
	if port := os.Getenv("PORT"); port != "" && !flagSet("addr") {
		*addr = "127.0.0.1:" + port
	}
	if err := run(*addr, os.Getenv("CHECKOUT_BUG")); err != nil {
		log.Fatal(err)
	}
}

func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func run(addr, bug string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another copy running? use -addr)", addr, err)
	}
	srv := &http.Server{Handler: logRequests(newStore(bug).routes()), ReadHeaderTimeout: 5 * time.Second}
	// Tests and scripts read this line to learn the port.
	fmt.Printf("listening on %s\n", ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	fmt.Println("shut down")
	return nil
}

func logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		h.ServeHTTP(rec, r)
		log.Printf("%s %s %d %s", r.Method, r.URL.RequestURI(), rec.status, time.Since(start).Round(time.Microsecond))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Product prices are in cents per currency.
type Product struct {
	SKU    string         `json:"sku"`
	Name   string         `json:"name"`
	Prices map[string]int `json:"prices"`
}

type cart struct {
	ID         string `json:"id"`
	SKU        string `json:"sku"`
	Qty        int    `json:"qty"`
	Currency   string `json:"currency"`
	Total      string `json:"total"`
	TotalCents int    `json:"total_cents"`
}

type order struct {
	ID     string `json:"order_id"`
	Status string `json:"status"`
	CartID string `json:"cart_id"`
	Total  string `json:"total"`
	User   string `json:"user"`
}

type store struct {
	bug      string
	products map[string]Product

	mu     sync.Mutex
	tokens map[string]string // token → user
	carts  map[string]cart
	orders map[string]order
	nextID int
}

func newStore(bug string) *store {
	return &store{
		bug: bug,
		products: map[string]Product{
			"A1": {SKU: "A1", Name: "Coffee mug", Prices: map[string]int{"EUR": 1250, "USD": 1400, "GBP": 1100}},
			"B2": {SKU: "B2", Name: "Tea towel", Prices: map[string]int{"EUR": 800, "USD": 900, "GBP": 700}},
			"C3": {SKU: "C3", Name: "Notebook", Prices: map[string]int{"EUR": 450, "USD": 500, "GBP": 400}},
		},
		tokens: map[string]string{},
		carts:  map[string]cart{},
		orders: map[string]order{},
	}
}

func (s *store) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>Checkout</title><h1>Sign in</h1>
<form method="post" action="/api/login"><input name="user"><input name="password" type="password"><button>Sign in</button></form>`)
	})
	mux.HandleFunc("POST /api/login", s.login)
	mux.HandleFunc("GET /api/me", s.authed(func(w http.ResponseWriter, r *http.Request, user string) {
		writeJSON(w, http.StatusOK, map[string]string{"user": user})
	}))
	mux.HandleFunc("GET /api/products", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"products": s.list("")})
	})
	mux.HandleFunc("GET /api/products/{sku}", func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.products[r.PathValue("sku")]
		if !ok {
			writeError(w, http.StatusNotFound, "no product "+r.PathValue("sku"))
			return
		}
		writeJSON(w, http.StatusOK, p)
	})
	mux.HandleFunc("POST /api/cart", s.addToCart)
	mux.HandleFunc("GET /api/cart/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		c, ok := s.carts[r.PathValue("id")]
		s.mu.Unlock()
		if !ok {
			writeError(w, http.StatusNotFound, "no cart "+r.PathValue("id"))
			return
		}
		writeJSON(w, http.StatusOK, c)
	})
	mux.HandleFunc("POST /api/orders", s.authed(s.placeOrder))
	mux.HandleFunc("GET /api/orders/{id}", s.authed(func(w http.ResponseWriter, r *http.Request, user string) {
		s.mu.Lock()
		o, ok := s.orders[r.PathValue("id")]
		s.mu.Unlock()
		if !ok || o.User != user {
			writeError(w, http.StatusNotFound, "no order "+r.PathValue("id"))
			return
		}
		writeJSON(w, http.StatusOK, o)
	}))
	mux.HandleFunc("GET /api/search", func(w http.ResponseWriter, r *http.Request) {
		q := strings.TrimSpace(r.URL.Query().Get("q"))
		if q == "" {
			writeError(w, http.StatusBadRequest, "missing q: use /api/search?q=mug")
			return
		}
		res := s.list(q)
		writeJSON(w, http.StatusOK, map[string]any{"query": q, "count": len(res), "results": res})
	})
	mux.HandleFunc("GET /api/version", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"service": "checkout", "version": Version})
	})
	return mux
}

func (s *store) list(query string) []Product {
	out := []Product{}
	for _, p := range s.products {
		if query == "" || strings.Contains(strings.ToLower(p.Name), strings.ToLower(query)) {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SKU < out[j].SKU })
	return out
}

func (s *store) login(w http.ResponseWriter, r *http.Request) {
	var in struct{ User, Password string }
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "body must be JSON {\"user\":…,\"password\":…}")
		return
	}
	if in.User != "demo" || in.Password != "demo" {
		writeError(w, http.StatusUnauthorized, "invalid credentials")
		return
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	tok := hex.EncodeToString(b)
	s.mu.Lock()
	s.tokens[tok] = in.User
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"token": tok, "user": in.User})
}

func (s *store) authed(h func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		user, known := s.tokens[tok]
		s.mu.Unlock()
		if !ok || !known {
			w.Header().Set("WWW-Authenticate", `Bearer realm="checkout"`)
			writeError(w, http.StatusUnauthorized, "missing or invalid bearer token: log in with POST /api/login")
			return
		}
		h(w, r, user)
	}
}

func (s *store) addToCart(w http.ResponseWriter, r *http.Request) {
	var in struct {
		SKU      string `json:"sku"`
		Qty      int    `json:"qty"`
		Currency string `json:"currency"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "body must be JSON {\"sku\":…,\"currency\":…}")
		return
	}
	p, ok := s.products[in.SKU]
	if !ok {
		writeError(w, http.StatusNotFound, "no product "+in.SKU)
		return
	}
	price, ok := p.Prices[in.Currency]
	if !ok {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("unsupported currency %q: use EUR, USD or GBP", in.Currency))
		return
	}
	if in.Qty <= 0 {
		in.Qty = 1
	}
	cents := price * in.Qty
	if s.bug == "price" {
		// The deliberate bug: a tax applied twice, off by a few cents.
		cents = cents * 101 / 100
	}
	s.mu.Lock()
	s.nextID++
	c := cart{ID: fmt.Sprintf("c-%d", s.nextID), SKU: in.SKU, Qty: in.Qty, Currency: in.Currency, Total: money(cents), TotalCents: cents}
	s.carts[c.ID] = c
	s.mu.Unlock()
	w.Header().Set("Location", "/api/cart/"+c.ID)
	writeJSON(w, http.StatusCreated, c)
}

func (s *store) placeOrder(w http.ResponseWriter, r *http.Request, user string) {
	var in struct {
		CartID string `json:"cart_id"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "body must be JSON {\"cart_id\":…}")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.carts[in.CartID]
	if !ok {
		writeError(w, http.StatusNotFound, "no cart "+in.CartID)
		return
	}
	s.nextID++
	o := order{ID: fmt.Sprintf("o-%d", s.nextID), Status: "confirmed", CartID: c.ID, Total: c.Total, User: user}
	s.orders[o.ID] = o
	w.Header().Set("Location", "/api/orders/"+o.ID)
	writeJSON(w, http.StatusCreated, o)
}

func money(cents int) string { return fmt.Sprintf("%d.%02d", cents/100, cents%100) }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
