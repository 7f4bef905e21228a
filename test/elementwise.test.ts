import { opSuite, randn } from './harness.ts';

opSuite('relu', [{ inputs: [randn([7], 1)] }, { inputs: [randn([2, 3, 5, 9], 2)] }, { inputs: [randn([1031], 3)] }]);
