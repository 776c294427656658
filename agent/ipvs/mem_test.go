package ipvs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// memTable is an in-memory Table that applies operations as the kernel
// does: adding what exists or touching what does not is an error.
type memTable struct {
	mu       sync.Mutex
	services map[string]Service
	// failOn makes operations on this service key fail.
	failOn   string
	readErr  error
	applied  []Op
	readHook func()
	// plainErrors makes Apply return errors that are not OpErrors, as a
	// Table other than Programmer might.
	plainErrors bool

	// reads counts ServicesWithReals and Services calls; realsRead lists
	// the keys of the services whose reals were read, in order.
	reads     int
	realsRead []string
}

var (
	_ Table       = (*memTable)(nil)
	_ realsFilter = (*memTable)(nil)
)

func newMemTable(ss ...Service) *memTable {
	m := &memTable{services: map[string]Service{}}
	for _, s := range ss {
		m.services[s.Key()] = s.normal()
	}
	return m
}

func (m *memTable) Services(ctx context.Context) ([]Service, error) {
	return m.ServicesWithReals(ctx, nil)
}

// ServicesWithReals is Programmer.ServicesWithReals: the services in order,
// those for which withReals returns false without reals.
func (m *memTable) ServicesWithReals(ctx context.Context, withReals func(Service) bool) ([]Service, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	if m.readHook != nil {
		m.readHook()
	}
	if m.readErr != nil {
		return nil, m.readErr
	}
	var out []Service
	for _, s := range m.services {
		out = append(out, s)
	}
	slices.SortFunc(out, compareServices)
	for i, s := range out {
		if withReals != nil && !withReals(bare(s)) {
			out[i].Reals = nil
			continue
		}
		out[i].Reals = slices.Clone(s.Reals)
		m.realsRead = append(m.realsRead, s.Key())
	}
	return out, nil
}

// resetCounts clears the read counters and the applied operations.
func (m *memTable) resetCounts() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads, m.realsRead, m.applied = 0, nil, nil
}

func (m *memTable) Apply(ctx context.Context, p Plan) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, op := range p.Ops {
		if err := m.apply(op); err != nil {
			if m.plainErrors {
				errs = append(errs, fmt.Errorf("%s: %w", op, err))
			} else {
				errs = append(errs, &OpError{Op: op, Err: err})
			}
		}
	}
	return errors.Join(errs...)
}

func (m *memTable) apply(op Op) error {
	k := op.Service.Key()
	if k == m.failOn {
		return errors.New("injected failure")
	}
	s, ok := m.services[k]
	switch op.Kind {
	case AddService:
		if ok {
			return errors.New("file exists")
		}
		m.services[k] = op.Service.normal()
	case UpdateService, DelService, AddReal, UpdateReal, DelReal:
		if !ok {
			return errors.New("no such service")
		}
	}
	i := slices.IndexFunc(s.Reals, func(r Real) bool { return r.key() == op.Real.key() })
	switch op.Kind {
	case UpdateService:
		reals := s.Reals
		s = op.Service.normal()
		s.Reals = reals
	case DelService:
		delete(m.services, k)
		return nil
	case AddReal:
		if i >= 0 {
			return errors.New("real exists")
		}
		s.Reals = append(s.Reals, op.Real)
	case UpdateReal:
		if i < 0 {
			return errors.New("no such real")
		}
		s.Reals[i] = op.Real
	case DelReal:
		if i < 0 {
			return errors.New("no such real")
		}
		s.Reals = slices.Delete(s.Reals, i, i+1)
	}
	if op.Kind != AddService {
		sortReals(s.Reals)
		m.services[k] = s
	}
	m.applied = append(m.applied, op)
	return nil
}
