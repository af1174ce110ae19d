// The table of requests waiting for answers: a ring by id with an overflow map.
import test from 'ava';
import { PendingTable } from '../src/runtime/wire/pending.ts';

const entry = (id: number) => ({ id, name: `req ${id}` });

test('entries come back by id, once; unknown and taken ids give nothing', (t) => {
  const table = new PendingTable<ReturnType<typeof entry>>();
  t.is(table.take(1), undefined, 'empty table');
  for (let id = 1; id <= 1000; id++) table.add(entry(id));
  t.is(table.size, 1000);
  for (let id = 1000; id >= 1; id -= 3) t.is(table.take(id)?.name, `req ${id}`);
  t.is(table.take(1000), undefined, 'taken once');
  t.is(table.take(5000), undefined);
  t.is(table.size, 1000 - 334);
  const rest = table.clear().map((e) => e.id);
  t.is(rest.length, 666);
  t.is(new Set(rest).size, 666);
  t.is(table.size, 0);
});

test('an old request still waiting when the ids wrap around the ring is not lost or confused', (t) => {
  const table = new PendingTable<ReturnType<typeof entry>>();
  table.add(entry(1)); // a slow call
  // Many more requests come and go while it waits: their ids take its slot again and again.
  for (let id = 2; id < 100_000; id++) {
    table.add(entry(id));
    t.is(table.take(id)?.id, id);
  }
  t.is(table.size, 1);
  t.is(table.take(1)?.name, 'req 1');
  // Ids that share a slot (same low bits) live side by side.
  table.add(entry(64));
  table.add(entry(64 + 8192));
  table.add(entry(64 + 2 * 8192));
  t.deepEqual([table.take(64 + 8192)?.id, table.take(64)?.id, table.take(64 + 2 * 8192)?.id], [64 + 8192, 64, 64 + 2 * 8192]);
  t.is(table.size, 0);
});

test('removeWhere takes out exactly the entries it matches, from the ring and the overflow alike', (t) => {
  const table = new PendingTable<ReturnType<typeof entry>>();
  for (let id = 1; id <= 300; id++) table.add(entry(id));
  for (let id = 1; id <= 300; id++) table.add(entry(id + 16384)); // same slots: overflow
  const removed = table.removeWhere((e) => e.id % 2 === 0).map((e) => e.id);
  t.is(removed.length, 300);
  t.true(removed.every((id) => id % 2 === 0));
  t.is(table.size, 300);
  for (let id = 1; id <= 300; id++) t.is(table.take(id)?.id, id % 2 ? id : undefined);
});
