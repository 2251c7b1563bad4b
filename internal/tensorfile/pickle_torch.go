package tensorfile

import (
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"sort"
	"strconv"
	"strings"
)

// storageDtypes maps torch's typed storage classes to dtypes.
var storageDtypes = map[string]Dtype{
	"FloatStorage": F32, "HalfStorage": F16, "BFloat16Storage": BF16,
	"DoubleStorage": F64, "LongStorage": I64, "IntStorage": I32,
	"ShortStorage": I16, "CharStorage": I8, "ByteStorage": U8, "BoolStorage": BOOL,
}

// storageRef is one torch storage: a flat run of elements that tensors view.
type storageRef struct {
	key   string
	dtype Dtype
	numel int64
	data  []byte // filled when the storage's bytes are located
}

// tensorRef is a tensor as _rebuild_tensor_v2 describes it: a strided view
// of a storage.
type tensorRef struct {
	storage *storageRef
	offset  int64
	size    []int64
	stride  []int64
}

// torchResolve is the allow-list of globals a torch pickle may name. Torch
// state dicts need only these; anything else (a pickled nn.Module class,
// os.system, numpy objects) is refused with the offending name.
func torchResolve(allowScript bool) func(mod, name string) (any, error) {
	return func(mod, name string) (any, error) {
		g := pyGlobal{mod, name}
		switch mod {
		case "collections":
			if name == "OrderedDict" {
				return g, nil
			}
		case "torch._utils":
			switch name {
			case "_rebuild_tensor_v2", "_rebuild_tensor", "_rebuild_parameter", "_rebuild_parameter_with_state":
				return g, nil
			}
		case "torch._tensor":
			if name == "_rebuild_from_type_v2" {
				return g, nil
			}
		case "torch":
			if _, ok := storageDtypes[name]; ok || name == "Tensor" || name == "Size" {
				return g, nil
			}
		case "torch.nn.parameter":
			if name == "Parameter" {
				return g, nil
			}
		case "_codecs":
			if name == "encode" {
				return g, nil
			}
		case "torch.jit._pickle":
			if allowScript {
				switch name {
				case "build_intlist", "build_tensorlist", "build_doublelist", "build_boollist", "restore_type_tag":
					return g, nil
				}
			}
		}
		if allowScript && (mod == "__torch__" || strings.HasPrefix(mod, "__torch__.")) {
			return g, nil // TorchScript class: becomes a placeholder object
		}
		return nil, fmt.Errorf("refusing to load global %s.%s: only torch tensors and state dicts are allowed (a pickled Python object needs the code that made it; save model.state_dict() instead)", mod, name)
	}
}

// torchCall applies an allowed callable to its arguments.
func torchCall(fn any, args []any) (any, error) {
	g, ok := fn.(pyGlobal)
	if !ok {
		return nil, fmt.Errorf("cannot call a %T", fn)
	}
	switch g.String() {
	case "collections.OrderedDict":
		d := newDict()
		if len(args) > 0 {
			return nil, fmt.Errorf("OrderedDict with arguments is not supported")
		}
		return d, nil
	case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
		if len(args) < 4 {
			return nil, fmt.Errorf("%s: want at least 4 arguments, got %d", g, len(args))
		}
		return newTensorRef(args)
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
		if len(args) < 1 {
			return nil, fmt.Errorf("%s: no data argument", g)
		}
		if _, ok := args[0].(*tensorRef); !ok {
			return nil, fmt.Errorf("%s: data is a %T, not a tensor", g, args[0])
		}
		return args[0], nil
	case "torch._tensor._rebuild_from_type_v2":
		// (func, new_type, args, state): a tensor with Python attributes or
		// a Parameter subclass; the data comes from func(*args).
		if len(args) < 3 {
			return nil, fmt.Errorf("%s: want 4 arguments, got %d", g, len(args))
		}
		inner, ok := args[2].(pyTuple)
		if !ok {
			return nil, fmt.Errorf("%s: args is a %T", g, args[2])
		}
		if t, ok := args[1].(pyGlobal); !ok || (t.String() != "torch.Tensor" && t.String() != "torch.nn.parameter.Parameter") {
			return nil, fmt.Errorf("%s: unsupported tensor type %v", g, args[1])
		}
		// torch nests one rebuild function inside; a chain of these would
		// only recurse.
		if fg, ok := args[0].(pyGlobal); ok && fg == g {
			return nil, fmt.Errorf("%s nested in itself", g)
		}
		return torchCall(args[0], inner)
	case "torch.Size":
		if len(args) == 1 {
			if t, ok := args[0].(pyTuple); ok {
				return t, nil
			}
		}
		return pyTuple{}, nil
	case "_codecs.encode":
		// Protocol 2 pickles bytes as _codecs.encode(latin1_text, 'latin1').
		if len(args) < 1 {
			return nil, fmt.Errorf("_codecs.encode: no argument")
		}
		s, ok := args[0].(string)
		if !ok {
			return nil, fmt.Errorf("_codecs.encode: argument is a %T", args[0])
		}
		b := make([]byte, 0, len(s))
		for _, r := range s {
			if r > 0xff {
				return nil, fmt.Errorf("_codecs.encode: non-latin1 text")
			}
			b = append(b, byte(r))
		}
		return b, nil
	case "torch.jit._pickle.build_intlist", "torch.jit._pickle.build_tensorlist",
		"torch.jit._pickle.build_doublelist", "torch.jit._pickle.build_boollist",
		"torch.jit._pickle.restore_type_tag":
		if len(args) < 1 {
			return nil, fmt.Errorf("%s: no argument", g)
		}
		return args[0], nil
	}
	if g.module == "__torch__" || strings.HasPrefix(g.module, "__torch__.") {
		return &pyObject{class: g, args: args}, nil
	}
	return nil, fmt.Errorf("%s is not callable here", g)
}

// newTensorRef validates _rebuild_tensor_v2's (storage, offset, size, stride).
func newTensorRef(args []any) (*tensorRef, error) {
	st, ok := args[0].(*storageRef)
	if !ok {
		return nil, fmt.Errorf("tensor storage is a %T, not a storage", args[0])
	}
	off, ok := args[1].(int64)
	if !ok || off < 0 {
		return nil, fmt.Errorf("bad storage offset %v", args[1])
	}
	size, err := intTuple(args[2])
	if err != nil {
		return nil, fmt.Errorf("tensor size: %w", err)
	}
	stride, err := intTuple(args[3])
	if err != nil {
		return nil, fmt.Errorf("tensor stride: %w", err)
	}
	if len(size) != len(stride) {
		return nil, fmt.Errorf("size %v and stride %v differ in length", size, stride)
	}
	return &tensorRef{storage: st, offset: off, size: size, stride: stride}, nil
}

func intTuple(v any) ([]int64, error) {
	var items []any
	switch t := v.(type) {
	case pyTuple:
		items = t
	case *pyList:
		items = t.items
	default:
		return nil, fmt.Errorf("want a tuple of ints, got %T", v)
	}
	out := make([]int64, len(items))
	for i, it := range items {
		n, ok := it.(int64)
		if !ok {
			return nil, fmt.Errorf("element %d is a %T, not an int", i, it)
		}
		out[i] = n
	}
	return out, nil
}

// storageFromPid decodes a persistent id ('storage', StorageClass, key,
// location, numel[, view_metadata]) into a storage descriptor (without its
// bytes). The same key always yields the same *storageRef so tensors that
// share a storage share its bytes.
func storageFromPid(pid any, cache map[string]*storageRef) (*storageRef, error) {
	t, ok := pid.(pyTuple)
	if !ok || len(t) < 5 {
		return nil, fmt.Errorf("persistent id %v is not a storage tuple", pid)
	}
	if kind, _ := t[0].(string); kind != "storage" {
		return nil, fmt.Errorf("persistent id of kind %v is not supported", t[0])
	}
	g, ok := t[1].(pyGlobal)
	if !ok {
		return nil, fmt.Errorf("storage type is a %T", t[1])
	}
	dt, ok := storageDtypes[g.name]
	if !ok || g.module != "torch" {
		return nil, fmt.Errorf("unsupported storage type %s", g)
	}
	var key string
	switch k := t[2].(type) {
	case string:
		key = k
	case int64:
		key = strconv.FormatInt(k, 10)
	default:
		return nil, fmt.Errorf("storage key is a %T", t[2])
	}
	numel, ok := t[4].(int64)
	if !ok || numel < 0 {
		return nil, fmt.Errorf("storage %s: bad element count %v", key, t[4])
	}
	if len(t) > 5 && t[5] != nil {
		return nil, fmt.Errorf("storage %s: legacy storage views are not supported", key)
	}
	if s, ok := cache[key]; ok {
		if s.dtype != dt {
			return nil, fmt.Errorf("storage %s is viewed as both %s and %s", key, s.dtype, dt)
		}
		return s, nil
	}
	s := &storageRef{key: key, dtype: dt, numel: numel}
	cache[key] = s
	return s, nil
}

// gatherBudget bounds the bytes a file's tensors may declare in total: a
// few times the bytes of the storages they view (tied weights view one
// storage twice), plus gatherSlack for small broadcast views as torch.save
// writes expand()ed tensors. Without it a few hundred bytes of pickle could
// declare a 2^33-element view of a one-element storage (stride 0), or
// thousands of views of one large storage, and every reader downstream
// would copy them all.
type gatherBudget struct{ left int64 }

const viewsPerStorage = 4

// gatherSlack is a variable so that fuzzing can make it small.
var gatherSlack int64 = 64 << 20

func newGatherBudget(storages map[string]*storageRef) *gatherBudget {
	var total int64
	for _, s := range storages {
		total += int64(len(s.data))
	}
	return &gatherBudget{left: viewsPerStorage*total + gatherSlack}
}

// materialize turns a strided view into C-ordered bytes: a sub-slice of the
// storage when the view is already contiguous (the usual case), a copy
// gathered element by element otherwise (transposed or sliced tensors).
// Every declared size is checked against the storage and the budget before
// anything is allocated.
func (t *tensorRef) materialize(budget *gatherBudget) (RawTensor, error) {
	st := t.storage
	es := int64(st.dtype.Size())
	if st.data == nil && st.numel > 0 {
		return RawTensor{}, fmt.Errorf("storage %s has no data", st.key)
	}
	avail := int64(len(st.data)) / es
	empty := false
	for i, d := range t.size {
		if d < 0 || t.stride[i] < 0 {
			return RawTensor{}, fmt.Errorf("negative size or stride (%v, %v)", t.size, t.stride)
		}
		empty = empty || d == 0
	}
	shape := append([]int64{}, t.size...)
	if empty {
		return RawTensor{Dtype: st.dtype, Shape: shape, Data: []byte{}}, nil
	}
	// The last element the view reaches, in overflow-checked arithmetic.
	last, overflow := uint64(t.offset), false
	for i, d := range t.size {
		hi, lo := bits.Mul64(uint64(d-1), uint64(t.stride[i]))
		sum, carry := bits.Add64(last, lo, 0)
		if hi != 0 || carry != 0 || sum > math.MaxInt64 {
			overflow = true
			break
		}
		last = sum
	}
	if overflow || int64(last) >= avail {
		reach := fmt.Sprint(last)
		if overflow {
			reach = "past 2^63"
		}
		return RawTensor{}, fmt.Errorf("view (offset %d, size %v, stride %v) reaches element %s of storage %s with %d elements",
			t.offset, t.size, t.stride, reach, st.key, avail)
	}
	nbytes, err := checkedByteLen(t.size, int(es))
	if err != nil {
		return RawTensor{}, err
	}
	if nbytes > budget.left {
		return RawTensor{}, fmt.Errorf("view (size %v, stride %v) expands storage %s of %d elements to %d bytes, past what is left of this file's budget (%d bytes: %d times its storages plus %d MiB)",
			t.size, t.stride, st.key, avail, nbytes, budget.left, viewsPerStorage, gatherSlack>>20)
	}
	budget.left -= nbytes
	numel := nbytes / es
	if isContiguous(t.size, t.stride) {
		b := st.data[t.offset*es : (t.offset+numel)*es]
		return RawTensor{Dtype: st.dtype, Shape: shape, Data: b[:len(b):len(b)]}, nil
	}
	// Gather: walk the outer dimensions in C order and copy the innermost
	// dimension element by element with its stride.
	out := make([]byte, nbytes)
	nd := len(t.size)
	inner, istride := t.size[nd-1], t.stride[nd-1]*es
	idx := make([]int64, nd-1)
	o := int64(0)
	for {
		p := t.offset
		for i, x := range idx {
			p += x * t.stride[i]
		}
		p *= es
		for j := int64(0); j < inner; j++ {
			copy(out[o:o+es], st.data[p:p+es])
			o += es
			p += istride
		}
		k := len(idx) - 1
		for k >= 0 {
			idx[k]++
			if idx[k] < t.size[k] {
				break
			}
			idx[k] = 0
			k--
		}
		if k < 0 {
			break
		}
	}
	return RawTensor{Dtype: st.dtype, Shape: shape, Data: out}, nil
}

// isContiguous reports C-contiguity; dimensions of size 1 may have any
// stride, as in torch.
func isContiguous(size, stride []int64) bool {
	want := int64(1)
	for i := len(size) - 1; i >= 0; i-- {
		if size[i] == 1 {
			continue
		}
		if stride[i] != want {
			return false
		}
		want *= size[i]
	}
	return true
}

// flatOut collects flatten's results, tensor names in file order.
type flatOut struct {
	names   []string
	tensors map[string]*tensorRef
	values  map[string]any
}

// maxFlattenDepth is Python's default recursion limit: no checkpoint
// nests containers anywhere near that deep.
const maxFlattenDepth = 1000

// flattener walks a loaded object and collects tensors under dotted names:
// nested dicts (a {'state_dict': ...} wrapper, optimizer state), lists and
// TorchScript module attributes all contribute path components. Plain
// scalars and strings are kept in values (e.g. 'epoch').
//
// The pickle memo lets a few bytes reference one container many times, so
// a walk of the object graph could be exponential in the pickle's size (a
// list holding the previous level twice, forty levels deep) and a deep chain
// quadratic in names. work bounds the walk: every node costs one unit plus
// the length of its name, against a budget proportional to the pickle.
type flattener struct {
	out    *flatOut
	onPath map[any]bool
	work   int64
	depth  int
}

func newFlattener(out *flatOut, pklLen int) *flattener {
	return &flattener{out: out, onPath: map[any]bool{}, work: 1<<20 + 64*int64(pklLen)}
}

func (f *flattener) walk(v any, prefix string) error {
	if f.work -= 1 + int64(len(prefix)); f.work < 0 {
		return fmt.Errorf("%s: the object graph is too large to flatten (shared sub-objects repeat it beyond the pickle's size)", prefix)
	}
	if f.depth++; f.depth > maxFlattenDepth {
		return fmt.Errorf("containers nested too deeply (more than %d levels)", maxFlattenDepth)
	}
	defer func() { f.depth-- }()
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	out := f.out
	switch o := v.(type) {
	case *tensorRef:
		if prefix == "" {
			prefix = "tensor" // a bare tensor was saved
		}
		if _, dup := out.tensors[prefix]; !dup {
			out.names = append(out.names, prefix)
		}
		out.tensors[prefix] = o
	case *pyDict:
		if f.onPath[o] {
			return nil
		}
		f.onPath[o] = true
		defer delete(f.onPath, o)
		for i, k := range o.keys {
			ks, err := keyString(k)
			if err != nil {
				return fmt.Errorf("%s: %w", join("?"), err)
			}
			if err := f.walk(o.vals[i], join(ks)); err != nil {
				return err
			}
		}
	case *pyList:
		if f.onPath[o] {
			return nil
		}
		f.onPath[o] = true
		defer delete(f.onPath, o)
		for i, it := range o.items {
			if err := f.walk(it, join(strconv.Itoa(i))); err != nil {
				return err
			}
		}
	case pyTuple:
		for i, it := range o {
			if err := f.walk(it, join(strconv.Itoa(i))); err != nil {
				return err
			}
		}
	case *pyObject:
		if f.onPath[o] {
			return nil
		}
		f.onPath[o] = true
		defer delete(f.onPath, o)
		if d, ok := o.state.(*pyDict); ok {
			return f.walk(d, prefix)
		}
	case nil, bool, int64, float64, string:
		if prefix != "" {
			out.values[prefix] = o
		}
	case *big.Int:
		if prefix != "" {
			out.values[prefix] = o.String()
		}
	case []byte, *storageRef, pyGlobal:
		// Not tensors and not useful values.
	default:
		return fmt.Errorf("%s: unexpected %T", prefix, v)
	}
	return nil
}

func keyString(k any) (string, error) {
	switch x := k.(type) {
	case string:
		return x, nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case bool:
		return strconv.FormatBool(x), nil
	}
	return "", fmt.Errorf("dict key of type %T cannot name a tensor", k)
}

// sortedKeys returns the keys of a tensor map in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
