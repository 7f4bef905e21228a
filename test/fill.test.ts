import { expect, test } from 'vitest';
import { forEachDevice, opSuite, randn, runBoth } from './harness.ts';

opSuite('copy', [{ inputs: [randn([5], 1)] }, { inputs: [randn([3, 7, 2], 2)] }]);

forEachDevice((d) => {
  test('fill writes its constant', async () => {
    const { got, want } = await runBoth(d, 'fill', [], { shape: [3, 5], value: -2.5 });
    expect(Array.from(got[0])).toEqual(Array.from(want[0].data));
    expect(want[0].data.every((x) => x === -2.5)).toBe(true);
  });
});

test('fill rejects a bad shape with the op name', async () => {
  await expect(() => runBoth({} as never, 'fill', [], { shape: [2, -1], value: 0 })).rejects.toThrow(/fill: shape must be a list of sizes/);
});
