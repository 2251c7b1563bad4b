package dist

import (
	"strings"
	"testing"
)

func TestFromEnv(t *testing.T) {
	cases := []struct {
		env     map[string]string
		ok      bool
		want    Env
		wantErr string
	}{
		{env: map[string]string{}, ok: false},
		{env: map[string]string{"RANK": "0", "WORLD_SIZE": "1"}, ok: false},
		{env: map[string]string{"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "node0", "MASTER_PORT": "1234"},
			ok: true, want: Env{Rank: 1, World: 4, LocalRank: 1, Addr: "node0", Port: 1234}},
		{env: map[string]string{"RANK": "2", "WORLD_SIZE": "3", "MASTER_ADDR": "10.0.0.1"},
			ok: true, want: Env{Rank: 2, World: 3, LocalRank: 2, Addr: "10.0.0.1", Port: DefaultPort}},
		// Slurm under srun; RANK/WORLD_SIZE win when both are present.
		{env: map[string]string{"SLURM_PROCID": "3", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1", "MASTER_ADDR": "n1"},
			ok: true, want: Env{Rank: 3, World: 8, LocalRank: 1, Addr: "n1", Port: DefaultPort}},
		{env: map[string]string{"SLURM_PROCID": "3", "SLURM_NTASKS": "8", "RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "n1"},
			ok: true, want: Env{Rank: 0, World: 2, LocalRank: 0, Addr: "n1", Port: DefaultPort}},
		{env: map[string]string{"RANK": "0", "WORLD_SIZE": "0"}, wantErr: "WORLD_SIZE=0: the world size must be at least 1"},
		{env: map[string]string{"RANK": "2", "WORLD_SIZE": "2", "MASTER_ADDR": "x"}, wantErr: "RANK=2 is outside the world of WORLD_SIZE=2 (ranks 0..1)"},
		{env: map[string]string{"RANK": "-1", "WORLD_SIZE": "2", "MASTER_ADDR": "x"}, wantErr: "RANK=-1 is outside the world"},
		{env: map[string]string{"SLURM_PROCID": "5", "SLURM_NTASKS": "4", "MASTER_ADDR": "x"}, wantErr: "SLURM_PROCID=5 is outside the world of SLURM_NTASKS=4"},
		{env: map[string]string{"RANK": "0", "WORLD_SIZE": "two"}, wantErr: `WORLD_SIZE="two" is not an integer`},
		{env: map[string]string{"WORLD_SIZE": "2"}, wantErr: "RANK is not set"},
		{env: map[string]string{"RANK": "0", "WORLD_SIZE": "2"}, wantErr: "MASTER_ADDR is not set"},
		{env: map[string]string{"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "x", "MASTER_PORT": "70000"}, wantErr: "MASTER_PORT=70000 is not a TCP port"},
	}
	for _, c := range cases {
		got, ok, err := FromEnv(func(k string) string { return c.env[k] })
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%v: error %v, want one containing %q", c.env, err, c.wantErr)
			}
			continue
		}
		if err != nil || ok != c.ok {
			t.Errorf("%v: ok %v err %v, want ok %v", c.env, ok, err, c.ok)
			continue
		}
		if ok {
			got.Source = ""
			if got != c.want {
				t.Errorf("%v: got %+v, want %+v", c.env, got, c.want)
			}
		}
	}
}
