package tensorfile

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// This file is a restricted pickle virtual machine: it understands the
// opcodes of protocols 0-5 but constructs only plain data (numbers, strings,
// lists, tuples, dicts) and the handful of objects torch.save and
// torch.jit.save need. Globals are resolved through an allow-list
// (pickleCallables); anything else is an error, so a malicious checkpoint
// cannot run code the way Python's pickle.load would let it.

// Integers beyond these sizes never occur in checkpoints; converting them
// (big.Int parsing and printing) costs time superlinear in their length.
// maxLongDigits is CPython's own int/str conversion limit.
const (
	maxLongDigits = 4300
	maxLongBytes  = 1 << 10
)

// pyList is a Python list (mutable, so a pointer).
type pyList struct{ items []any }

// pyTuple is a Python tuple.
type pyTuple []any

// pyDict is an insertion-ordered Python dict (OrderedDict too).
type pyDict struct {
	keys  []any
	vals  []any
	index map[any]int // for comparable keys; others are searched linearly
	// attrs holds instance attributes set by BUILD (OrderedDict._metadata).
	attrs any
}

func newDict() *pyDict { return &pyDict{index: map[any]int{}} }

func (d *pyDict) set(k, v any) {
	if isHashable(k) {
		if i, ok := d.index[k]; ok {
			d.vals[i] = v
			return
		}
		d.index[k] = len(d.keys)
	}
	d.keys = append(d.keys, k)
	d.vals = append(d.vals, v)
}

func (d *pyDict) get(k string) (any, bool) {
	i, ok := d.index[k]
	if !ok {
		return nil, false
	}
	return d.vals[i], true
}

func isHashable(k any) bool {
	switch k.(type) {
	case string, int64, bool, float64, nil:
		return true
	}
	return false
}

// pyGlobal is a resolved-but-unapplied global (a class or function).
type pyGlobal struct{ module, name string }

func (g pyGlobal) String() string { return g.module + "." + g.name }

// pyObject is a placeholder instance of an allowed class (TorchScript's
// __torch__.* modules): its state is recorded, nothing is executed.
type pyObject struct {
	class pyGlobal
	args  []any
	state any
}

// pyMark is the MARK sentinel on the stack.
type pyMark struct{}

// unpickler holds the VM state for one pickle stream.
type unpickler struct {
	name string // for error messages
	data []byte
	pos  int

	stack []any
	marks []int // stack heights at each MARK
	memo  map[int64]any

	// resolve decides what a GLOBAL may name; it returns a value pushed
	// on the stack (usually a pyGlobal) or an error.
	resolve func(module, name string) (any, error)
	// call applies an allowed callable (REDUCE, NEWOBJ).
	call func(fn any, args []any) (any, error)
	// persistentLoad turns a persistent id into a value (storages).
	persistentLoad func(pid any) (any, error)
}

func (u *unpickler) errorf(format string, args ...any) error {
	return fmt.Errorf("pickle %s: at byte %d: %s", u.name, u.pos, fmt.Sprintf(format, args...))
}

func (u *unpickler) read(n int) ([]byte, error) {
	if n < 0 || n > len(u.data)-u.pos {
		return nil, u.errorf("truncated: need %d bytes, %d left", n, len(u.data)-u.pos)
	}
	b := u.data[u.pos : u.pos+n]
	u.pos += n
	return b, nil
}

func (u *unpickler) readLine() (string, error) {
	// bytes, not string(u.data[u.pos:]): converting would copy the rest of
	// the stream for every text opcode, quadratic in the pickle's size.
	i := bytes.IndexByte(u.data[u.pos:], '\n')
	if i < 0 {
		return "", u.errorf("truncated: unterminated line")
	}
	s := string(u.data[u.pos : u.pos+i])
	u.pos += i + 1
	return s, nil
}

func (u *unpickler) push(v any) { u.stack = append(u.stack, v) }

// fence is the stack height below which opcodes may not reach: the last
// MARK, as in CPython's unpickler. Only MARK-consuming opcodes take it away.
func (u *unpickler) fence() int {
	if len(u.marks) == 0 {
		return 0
	}
	return u.marks[len(u.marks)-1]
}

// popN pops the top n items (n small: TUPLE1..3).
func (u *unpickler) popN(n int) ([]any, error) {
	if len(u.stack)-u.fence() < n {
		return nil, u.errorf("stack underflow")
	}
	items := append([]any(nil), u.stack[len(u.stack)-n:]...)
	u.stack = u.stack[:len(u.stack)-n]
	return items, nil
}

func (u *unpickler) pop() (any, error) {
	v, err := u.popN(1)
	if err != nil {
		return nil, err
	}
	return v[0], nil
}

func (u *unpickler) top() (any, error) {
	if len(u.stack) <= u.fence() {
		return nil, u.errorf("stack underflow")
	}
	return u.stack[len(u.stack)-1], nil
}

// popMark pops everything above the last MARK.
func (u *unpickler) popMark() ([]any, error) {
	if len(u.marks) == 0 {
		return nil, u.errorf("no MARK on the stack")
	}
	m := u.marks[len(u.marks)-1]
	u.marks = u.marks[:len(u.marks)-1]
	if m > len(u.stack) { // cannot happen with the fence checks; never panic
		return nil, u.errorf("stack underflow below MARK")
	}
	items := append([]any(nil), u.stack[m:]...)
	u.stack = u.stack[:m]
	return items, nil
}

func (u *unpickler) memoPut(i int64) error {
	v, err := u.top()
	if err != nil {
		return err
	}
	u.memo[i] = v
	return nil
}

func (u *unpickler) memoGet(i int64) error {
	v, ok := u.memo[i]
	if !ok {
		return u.errorf("memo key %d not found", i)
	}
	u.push(v)
	return nil
}

// load runs the VM until STOP and returns the result.
func (u *unpickler) load() (any, error) {
	if u.memo == nil {
		u.memo = map[int64]any{}
	}
	for {
		if u.pos >= len(u.data) {
			return nil, u.errorf("truncated: no STOP opcode")
		}
		op := u.data[u.pos]
		u.pos++
		if op == '.' { // STOP
			v, err := u.pop()
			if err != nil {
				return nil, err
			}
			return v, nil
		}
		if err := u.step(op); err != nil {
			return nil, err
		}
	}
}

func (u *unpickler) step(op byte) error {
	switch op {
	case 0x80: // PROTO
		v, err := u.readUint(1)
		if err != nil {
			return err
		}
		if v > 5 {
			return u.errorf("unsupported pickle protocol %d", v)
		}
	case 0x95: // FRAME: framing is transparent to us
		_, err := u.read(8)
		return err
	case '(': // MARK
		u.marks = append(u.marks, len(u.stack))
	case '0': // POP
		if len(u.marks) > 0 && len(u.stack) == u.fence() {
			u.marks = u.marks[:len(u.marks)-1] // popping a MARK itself
			return nil
		}
		_, err := u.pop()
		return err
	case '1': // POP_MARK
		_, err := u.popMark()
		return err
	case '2': // DUP
		v, err := u.top()
		if err != nil {
			return err
		}
		u.push(v)
	case 'N':
		u.push(nil)
	case 0x88:
		u.push(true)
	case 0x89:
		u.push(false)
	case 'I', 'L', 'F', 'S', 'V', 'P':
		return u.stepText(op)
	case 'J', 'K', 'M': // BININT (4 bytes, signed), BININT1, BININT2
		v, err := u.readUint(intWidth[op])
		if err != nil {
			return err
		}
		if op == 'J' {
			u.push(int64(int32(v)))
		} else {
			u.push(int64(v))
		}
	case 0x8a, 0x8b: // LONG1, LONG4: a length (1 or 4 bytes), then the bytes
		v, err := u.readUint(intWidth[op])
		if err != nil {
			return err
		}
		n := int(int32(v))
		if n > maxLongBytes {
			return u.errorf("LONG of %d bytes is too long (limit %d)", n, maxLongBytes)
		}
		b, err := u.read(n)
		if err != nil {
			return err
		}
		u.push(decodeLong(b))
	case 'G': // BINFLOAT, big-endian
		b, err := u.read(8)
		if err != nil {
			return err
		}
		u.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
	case 'T', 'U', 'X', 0x8c, 0x8d, 'B', 'C', 0x8e, 0x96:
		return u.stepBytes(op)
	case ']':
		u.push(&pyList{})
	case ')':
		u.push(pyTuple{})
	case '}':
		u.push(newDict())
	case 0x8f: // EMPTY_SET: represented as a list; sets never hold tensors
		u.push(&pyList{})
	case 'l', 't', 0x85, 0x86, 0x87, 0x91, 'd': // LIST, TUPLE, TUPLE1..3, FROZENSET (a tuple), DICT
		items, err := u.popArgs(op)
		if err != nil {
			return err
		}
		switch op {
		case 'l':
			u.push(&pyList{items: items})
		case 'd':
			d := newDict()
			if err := u.setPairs(d, items, "DICT"); err != nil {
				return err
			}
			u.push(d)
		default:
			u.push(pyTuple(items))
		}
	case 'a', 'e', 0x90: // APPEND, APPENDS, ADDITEMS (sets are lists)
		items, t, err := u.popArgsOnto(op)
		if err != nil {
			return err
		}
		l, ok := t.(*pyList)
		if !ok {
			what := "APPEND"
			if op == 0x90 {
				what = "ADDITEMS"
			}
			return u.errorf("%s to a %T", what, t)
		}
		l.items = append(l.items, items...)
	case 's', 'u': // SETITEM, SETITEMS
		items, t, err := u.popArgsOnto(op)
		if err != nil {
			return err
		}
		d, ok := t.(*pyDict)
		if !ok {
			return u.errorf("SETITEM on a %T", t)
		}
		return u.setPairs(d, items, "SETITEMS")
	case 'g', 'h', 'j':
		i, err := u.memoIndex(op, 'g', 'h', "GET")
		if err != nil {
			return err
		}
		return u.memoGet(i)
	case 'p', 'q', 'r':
		i, err := u.memoIndex(op, 'p', 'q', "PUT")
		if err != nil {
			return err
		}
		return u.memoPut(i)
	case 0x94: // MEMOIZE
		return u.memoPut(int64(len(u.memo)))
	case 'c': // GLOBAL module\nname\n
		mod, err := u.readLine()
		if err != nil {
			return err
		}
		name, err := u.readLine()
		if err != nil {
			return err
		}
		return u.global(mod, name)
	case 0x93: // STACK_GLOBAL
		items, err := u.popN(2)
		if err != nil {
			return err
		}
		mod, ok1 := items[0].(string)
		name, ok2 := items[1].(string)
		if !ok1 || !ok2 {
			return u.errorf("STACK_GLOBAL needs two strings")
		}
		return u.global(mod, name)
	case 'R', 0x81, 0x92: // REDUCE, NEWOBJ, NEWOBJ_EX
		if op == 0x92 {
			if _, err := u.pop(); err != nil { // kwargs: unused by our types
				return err
			}
		}
		items, err := u.popN(2)
		if err != nil {
			return err
		}
		args, ok := items[1].(pyTuple)
		if !ok {
			return u.errorf("call arguments are a %T, not a tuple", items[1])
		}
		v, err := u.call(items[0], args)
		if err != nil {
			return u.errorf("%v", err)
		}
		u.push(v)
	case 'b': // BUILD
		state, err := u.pop()
		if err != nil {
			return err
		}
		t, err := u.top()
		if err != nil {
			return err
		}
		switch o := t.(type) {
		case *pyObject:
			o.state = state
		case *pyDict:
			o.attrs = state
		case *tensorRef:
			// A tensor's Python attributes: nothing we need.
		default:
			return u.errorf("BUILD on a %T", t)
		}
	case 'Q': // BINPERSID
		pid, err := u.pop()
		if err != nil {
			return err
		}
		return u.persid(pid)
	case 'i', 'o':
		return u.errorf("INST/OBJ opcodes (old-style class instances) are not allowed")
	case 0x82, 0x83, 0x84:
		return u.errorf("extension registry opcodes are not allowed")
	case 0x97, 0x98: // NEXT_BUFFER, READONLY_BUFFER
		return u.errorf("out-of-band buffers are not supported")
	default:
		return u.errorf("unknown opcode 0x%02x", op)
	}
	return nil
}

// stepText runs the protocol-0 opcodes whose argument is a line of text.
func (u *unpickler) stepText(op byte) error {
	s, err := u.readLine()
	if err != nil {
		return err
	}
	switch op {
	case 'I': // INT; "01"/"00" are True/False in protocol 0
		switch s {
		case "01":
			u.push(true)
		case "00":
			u.push(false)
		default:
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return u.errorf("bad INT %q", s)
			}
			u.push(v)
		}
	case 'L': // LONG
		s = strings.TrimSuffix(s, "L")
		if len(s) > maxLongDigits {
			return u.errorf("LONG of %d digits is too long (limit %d)", len(s), maxLongDigits)
		}
		bi, ok := new(big.Int).SetString(s, 10)
		if !ok {
			return u.errorf("bad LONG %q", s)
		}
		u.push(normInt(bi))
	case 'F': // FLOAT
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return u.errorf("bad FLOAT %q", s)
		}
		u.push(f)
	case 'S': // STRING (a quoted repr)
		uq, err := strconv.Unquote(pyQuoteToGo(s))
		if err != nil {
			return u.errorf("bad STRING %q", s)
		}
		u.push(uq)
	case 'V': // UNICODE (raw-unicode-escape line)
		u.push(s)
	case 'P': // PERSID
		return u.persid(s)
	}
	return nil
}

// stepBytes runs the opcodes of a byte or text string: a little-endian
// length of 1, 4 or 8 bytes, then the string.
func (u *unpickler) stepBytes(op byte) error {
	width := 8
	switch op {
	case 'U', 'C', 0x8c:
		width = 1
	case 'T', 'X', 'B':
		width = 4
	}
	l, err := u.readUint(width)
	if err != nil {
		return err
	}
	if width == 8 && l > uint64(len(u.data)) {
		return u.errorf("truncated: length %d", l)
	}
	b, err := u.read(int(l))
	if err != nil {
		return err
	}
	switch op {
	case 'X', 0x8c, 0x8d: // unicode
		u.push(string(b))
	case 'T', 'U': // py2 str: torch's legacy files hold ASCII keys
		u.push(string(b))
	default: // bytes
		u.push(append([]byte(nil), b...))
	}
	return nil
}

// intWidth is the width in bytes of the little-endian integer that follows
// BININT, BININT1, BININT2, LONG1 and LONG4.
var intWidth = [256]int{'J': 4, 'K': 1, 'M': 2, 0x8a: 1, 0x8b: 4}

// readUint reads an n-byte little-endian unsigned integer.
func (u *unpickler) readUint(n int) (uint64, error) {
	b, err := u.read(n)
	if err != nil {
		return 0, err
	}
	var v uint64
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v, nil
}

// fixedArgs are the opcodes that take a fixed number of stack items; the
// others that build from the stack (APPENDS, SETITEMS, LIST, TUPLE, DICT,
// ADDITEMS, FROZENSET) take everything above the last MARK.
var fixedArgs = map[byte]int{'a': 1, 's': 2, 0x85: 1, 0x86: 2, 0x87: 3}

// popArgs pops the items opcode op builds from.
func (u *unpickler) popArgs(op byte) ([]any, error) {
	if n := fixedArgs[op]; n > 0 {
		return u.popN(n)
	}
	return u.popMark()
}

// popArgsOnto pops op's items and returns them with the object below them,
// which they go into (APPEND's list, SETITEM's dict).
func (u *unpickler) popArgsOnto(op byte) ([]any, any, error) {
	items, err := u.popArgs(op)
	if err != nil {
		return nil, nil, err
	}
	t, err := u.top()
	return items, t, err
}

// setPairs sets d's keys and values from items: k0, v0, k1, v1, ...
func (u *unpickler) setPairs(d *pyDict, items []any, what string) error {
	if len(items)%2 != 0 {
		return u.errorf("%s with an odd number of items", what)
	}
	for i := 0; i < len(items); i += 2 {
		d.set(items[i], items[i+1])
	}
	return nil
}

// memoIndex reads the memo index of a GET or PUT: a decimal line for the
// text opcode, one byte for the short binary one, else four little-endian
// bytes.
func (u *unpickler) memoIndex(op, textOp, byteOp byte, what string) (int64, error) {
	if op == textOp {
		s, err := u.readLine()
		if err != nil {
			return 0, err
		}
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, u.errorf("bad %s %q", what, s)
		}
		return i, nil
	}
	width := 4
	if op == byteOp {
		width = 1
	}
	v, err := u.readUint(width)
	return int64(v), err
}

func (u *unpickler) global(mod, name string) error {
	v, err := u.resolve(mod, name)
	if err != nil {
		return u.errorf("%v", err)
	}
	u.push(v)
	return nil
}

func (u *unpickler) persid(pid any) error {
	if u.persistentLoad == nil {
		return u.errorf("persistent id in a pickle that should have none")
	}
	v, err := u.persistentLoad(pid)
	if err != nil {
		return u.errorf("%v", err)
	}
	u.push(v)
	return nil
}

// decodeLong decodes pickle's little-endian two's-complement LONG bytes.
func decodeLong(b []byte) any {
	if len(b) == 0 {
		return int64(0)
	}
	be := make([]byte, len(b))
	for i := range b {
		be[len(b)-1-i] = b[i]
	}
	bi := new(big.Int).SetBytes(be)
	if b[len(b)-1]&0x80 != 0 {
		bi.Sub(bi, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return normInt(bi)
}

// normInt keeps ints that fit in int64 as int64, the type the rest uses.
func normInt(bi *big.Int) any {
	if bi.IsInt64() {
		return bi.Int64()
	}
	return bi
}

// pyQuoteToGo turns a Python 'single-quoted' repr into a Go-quotable form.
func pyQuoteToGo(s string) string {
	if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' {
		inner := strings.ReplaceAll(s[1:len(s)-1], `\'`, `'`)
		return `"` + strings.ReplaceAll(inner, `"`, `\"`) + `"`
	}
	return s
}
