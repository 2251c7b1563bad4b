package dist

/*
#include <stdlib.h>
#include "c10d.h"
*/
import "C"

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"
	"unsafe"
)

// set stores val under key in the job's TCPStore.
func (g *Group) set(key string, val []byte) error {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	cv := C.CBytes(append(val, 0))
	defer C.free(cv)
	var e *C.char
	if C.cc_store_set(g.c, ck, (*C.char)(cv), C.int64_t(len(val)), &e) != 0 {
		return cerr(e)
	}
	return nil
}

// get reads key, waiting up to the group's timeout for it to be set.
func (g *Group) get(key string) ([]byte, error) {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var v *C.char
	var n C.int64_t
	var e *C.char
	if C.cc_store_get(g.c, ck, &v, &n, &e) != 0 {
		return nil, cerr(e)
	}
	defer C.free(unsafe.Pointer(v))
	return C.GoBytes(unsafe.Pointer(v), C.int(n)), nil
}

// has reports whether key is set, without waiting.
func (g *Group) has(key string) (bool, error) {
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	keys := []*C.char{ck}
	var present C.int
	var e *C.char
	if C.cc_store_check(g.c, (**C.char)(unsafe.Pointer(&keys[0])), 1, &present, &e) != 0 {
		return false, cerr(e)
	}
	return present != 0, nil
}

// waitRanks polls until every rank has set prefix+rank, or until the
// deadline; it returns the ranks that have not.
func (g *Group) waitRanks(prefix string, deadline time.Time) ([]int, error) {
	pause := 5 * time.Millisecond
	for {
		var missing []int
		for r := 0; r < g.World; r++ {
			ok, err := g.has(fmt.Sprintf("%s%d", prefix, r))
			if err != nil {
				return nil, err
			}
			if !ok {
				missing = append(missing, r)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			return missing, nil
		}
		time.Sleep(pause)
		pause = min(2*pause, 200*time.Millisecond)
	}
}

// Agree checks at rendezvous that every rank joined within the timeout and
// runs with the same value (clipcap's training config and world size):
// each rank publishes the value's hash and the value, rank 0 compares them
// all and publishes one verdict that every rank returns, so a mismatch
// fails every rank at once instead of leaving some waiting. diff, given
// rank 0's value and another's, describes how they differ.
func (g *Group) Agree(value []byte, diff func(rank0, other []byte) string) error {
	sum := sha256.Sum256(value)
	hash := hex.EncodeToString(sum[:])
	if err := g.set(fmt.Sprintf("agree/hash/%d", g.Rank), []byte(hash)); err != nil {
		return fmt.Errorf("rank %d: rendezvous store at %s: %v", g.Rank, g.addr, err)
	}
	if err := g.set(fmt.Sprintf("agree/value/%d", g.Rank), value); err != nil {
		return fmt.Errorf("rank %d: rendezvous store at %s: %v", g.Rank, g.addr, err)
	}
	joined := true
	if g.Rank == 0 {
		var verdict string
		verdict, joined = g.judge(hash, value, diff)
		if err := g.set("agree/verdict", []byte(verdict)); err != nil {
			return fmt.Errorf("rank 0: rendezvous store: %v", err)
		}
	}
	v, err := g.get("agree/verdict")
	if err != nil {
		return fmt.Errorf("rank %d: no word from rank 0 at %s within %v: %v", g.Rank, g.addr, g.Timeout, err)
	}
	// Rank 0 hosts the store: it stays until every rank has read the
	// verdict, or a failing rank 0 would take it away unread.
	if err := g.set(fmt.Sprintf("agree/read/%d", g.Rank), []byte("1")); err != nil {
		return fmt.Errorf("rank %d: rendezvous store at %s: %v", g.Rank, g.addr, err)
	}
	if g.Rank == 0 && joined {
		g.waitRanks("agree/read/", time.Now().Add(g.Timeout))
	}
	if s := string(v); s != "ok" {
		return fmt.Errorf("rank %d: %s", g.Rank, s)
	}
	return nil
}

// judge is rank 0's verdict; joined is whether every rank came.
func (g *Group) judge(hash string, value []byte, diff func(rank0, other []byte) string) (verdict string, joined bool) {
	missing, err := g.waitRanks("agree/value/", time.Now().Add(g.Timeout))
	if err != nil {
		return "rendezvous store: " + err.Error(), false
	}
	if len(missing) > 0 {
		return fmt.Sprintf("rank(s) %s of %d did not join the rendezvous at %s within %v (not started, or started with another WORLD_SIZE/MASTER_ADDR/MASTER_PORT)",
			ranks(missing), g.World, g.addr, g.Timeout), false
	}
	var bad []string
	for r := 1; r < g.World; r++ {
		h, err := g.get(fmt.Sprintf("agree/hash/%d", r))
		if err != nil {
			return "rendezvous store: " + err.Error(), true
		}
		if string(h) == hash {
			continue
		}
		other, err := g.get(fmt.Sprintf("agree/value/%d", r))
		if err != nil {
			return "rendezvous store: " + err.Error(), true
		}
		bad = append(bad, fmt.Sprintf("rank %d's config differs from rank 0's (%s)", r, diff(value, other)))
	}
	if len(bad) > 0 {
		return strings.Join(bad, "; ") + ": every rank must run the same config, world size and --set overrides", true
	}
	return "ok", true
}

// lost explains a failed collective: every surviving rank announces itself
// in the store and waits a little for the others; the ranks that stay
// silent are the ones that died or hang. When the store itself is gone,
// rank 0 (its host) is.
func (g *Group) lost(err error) error {
	if g.World < 2 {
		return err
	}
	if serr := g.set(fmt.Sprintf("alive/%d", g.Rank), []byte("1")); serr != nil {
		if g.Rank == 0 {
			return err
		}
		return fmt.Errorf("lost rank 0 (its rendezvous store at %s is unreachable: %v): %v", g.addr, serr, err)
	}
	wait := min(g.Timeout, 5*time.Second)
	missing, serr := g.waitRanks("alive/", time.Now().Add(wait))
	if serr != nil {
		return fmt.Errorf("lost rank 0 (its rendezvous store at %s is unreachable: %v): %v", g.addr, serr, err)
	}
	if len(missing) == 0 {
		return err
	}
	return fmt.Errorf("lost rank(s) %s of %d (died, or hung past dist_timeout %v): %v", ranks(missing), g.World, g.Timeout, err)
}

func ranks(rs []int) string {
	sort.Ints(rs)
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = fmt.Sprint(r)
	}
	return strings.Join(s, ",")
}
