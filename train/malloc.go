package train

/*
#include <malloc.h>

// c_heap_in_use is the bytes glibc malloc has handed out and not yet taken
// back, over all arenas: a leak grows it, fragmentation does not.
static size_t c_heap_in_use(void) {
	struct mallinfo2 m = mallinfo2();
	return m.uordblks + m.hblkhd;
}
*/
import "C"

// trimEvery is how many optimizer steps pass between two releaseFreeMemory
// calls: a trim costs a few milliseconds, a step at least tens.
const trimEvery = 50

// releaseFreeMemory hands the free pages inside glibc's malloc arenas back
// to the OS. libtorch frees a step's activations into the arenas, and the
// small blocks that survive a step (optimizer scalars, gotch's per-call
// output slots) pin the arenas' tops, so glibc's own trimming, which only
// shrinks from the top, never runs: without this, RSS crept up by ~100 MB
// over 2000 steps of a small model with the live tensors flat.
func releaseFreeMemory() { C.malloc_trim(0) }

// cHeapInUseMB is the C heap in use (MB), for the long-run memory benchmark.
func cHeapInUseMB() float64 { return float64(C.c_heap_in_use()) / (1 << 20) }
