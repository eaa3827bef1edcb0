package selection

// Class is what selection does with a changed file, by the rules of scope
// changed in the order they apply (docs/suite.md, "Selection"): a global file
// widens to every case, an ignored file selects nothing, a covered file selects
// the cases whose covers match it, and an uncovered one falls to
// selection.unmapped.
type Class uint8

// The classes, in the order the rules try them.
const (
	Uncovered Class = iota
	Global
	Ignored
	Covered
)

// String names the class as the coverage report prints it.
func (c Class) String() string {
	switch c {
	case Global:
		return "global"
	case Ignored:
		return "ignored"
	case Covered:
		return "covered"
	}
	return "uncovered"
}

// Classify returns, for each path, its class and how many cases cover it (0
// unless Covered). It applies the same compiled patterns and the same matcher
// as Select, so the coverage map and a real selection cannot disagree.
func (s *Selector) Classify(paths []string) (classes []Class, cases []int) {
	classes = make([]Class, len(paths))
	cases = make([]int, len(paths))
	m := s.newMatcher()
	for i, p := range paths {
		if ok, _ := s.global.Match(p); ok {
			classes[i] = Global
			continue
		}
		if ok, _ := s.ignore.Match(p); ok {
			classes[i] = Ignored
			continue
		}
		n := 0
		m.match(p, func(int, string) { n++ })
		if n > 0 {
			classes[i], cases[i] = Covered, n
		}
	}
	return classes, cases
}
