package step

import "io"

// unknownSizeBuf is the first buffer for a body of unknown length (chunked,
// or read until the connection closes): io.ReadAll's own first size.
const unknownSizeBuf = 512

// readBody reads r, a response body the server said is size bytes long
// (-1: unknown), keeping at most max bytes: it returns exactly what
// io.ReadAll(io.LimitReader(r, max+1)) would, cut to max bytes, and whether
// the cut dropped anything. It never reads more than max+1 bytes (the rest is
// never read), and it reads a body whose length was announced into one buffer
// of that length (plus the byte that sees the end): no doubling, no copies.
// The buffer never holds more than max+1 bytes, whatever a server announces.
func readBody(r io.Reader, size, max int64) (body []byte, truncated bool, err error) {
	limit := max + 1 // one byte past the limit tells a cut body from a whole one
	first := int64(unknownSizeBuf)
	if size >= 0 {
		first = size + 1 // the read that sees the end needs room for a byte
	}
	buf := make([]byte, 0, min(first, limit))
	for int64(len(buf)) < limit {
		if len(buf) == cap(buf) {
			// Double, as io.ReadAll does, but never past the limit.
			grown := make([]byte, len(buf), min(2*int64(cap(buf))+unknownSizeBuf, limit))
			copy(grown, buf)
			buf = grown
		}
		room := buf[len(buf):min(int64(cap(buf)), limit)]
		n, rerr := r.Read(room)
		buf = buf[:len(buf)+n]
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			err = rerr
			break
		}
	}
	if int64(len(buf)) > max {
		return buf[:max], true, err
	}
	return buf, false, err
}
