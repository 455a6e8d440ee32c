// dredd hooks for the v3 contract (../shared/spec/api.apib): seed what each example transaction assumes.
//
// The contract's transactions are not independent: "Delete Workflow" removes styx-canary/StyxCanary and
// later examples use it again; resource examples assume styx-canary-resource; the Get Backfill example
// names a fixed backfill id. So every transaction first (re)creates the workflow, and the ones that need
// more get it in their own `before` hook. STYX_CONTRACT_API is the API's base URL (…/api/v3);
// STYX_CONTRACT_IMAGE a local image with `sleep`. The service runs on Docker because the examples show
// active states with an execution description, which only an execution that keeps running holds.
const hooks = require('hooks');

const API = process.env.STYX_CONTRACT_API;
const COMPONENT = 'styx-canary';
const WORKFLOW = 'StyxCanary';
const RESOURCE = 'styx-canary-resource';
const BLOCKER = 'styx-canary-blocker'; // concurrency 0: an instance that needs it stays QUEUED
const EXAMPLE_BACKFILL_ID = 'backfill-1489054446085-52684';
const EXAMPLE_PARAMETER = '2017-01-01T01';
const TRIGGER_PARAMETERS = { env: { FOO: 'bar' } };
const POLL_DEADLINE_MS = 30000;

const WORKFLOW_CONFIG = {
  id: WORKFLOW,
  schedule: 'hours',
  docker_image: process.env.STYX_CONTRACT_IMAGE,
  docker_args: ['sleep', '300'],
  env: { FOO: 'bar' },
  resources: [],
  running_timeout: 'PT2H',
  retry_condition: '#tries < 3',
};

async function call(method, path, body) {
  const response = await fetch(`${API}${path}`, {
    method,
    headers: { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) : null };
}

async function expectOk(method, path, body) {
  const response = await call(method, path, body);
  if (response.status >= 300) {
    throw new Error(`seeding ${method} ${path} answered ${response.status}: ${JSON.stringify(response.json)}`);
  }
  return response.json;
}

function instancePath(parameter) {
  return `/workflows/${COMPONENT}/${WORKFLOW}/instances/${parameter}`;
}

async function activeState(parameter) {
  const { active_states: active } = await expectOk('GET', `/status/activeStates?component=${COMPONENT}`);
  return active.find((state) => state.workflow_instance.parameter === parameter);
}

async function waitUntil(condition, what) {
  const deadline = Date.now() + POLL_DEADLINE_MS;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function trigger(parameter) {
  await expectOk('POST', '/scheduler/trigger?allowFuture=true', {
    workflow_id: { component_id: COMPONENT, id: WORKFLOW },
    parameter,
    trigger_parameters: TRIGGER_PARAMETERS,
  });
}

// An instance of `parameter` whose container runs, so its state has an execution description.
async function ensureRunningInstance(parameter) {
  if ((await activeState(parameter)) === undefined) await trigger(parameter);
  await waitUntil(async () => (await activeState(parameter))?.state === 'RUNNING', `${parameter} is RUNNING`);
}

async function ensureInactive(parameter) {
  if ((await activeState(parameter)) === undefined) return;
  await expectOk('POST', '/scheduler/halt', { workflow_instance: `${COMPONENT}/${WORKFLOW}/${parameter}` });
  await waitUntil(async () => (await activeState(parameter)) === undefined, `${parameter} is no longer active`);
}

// Styx accepts retryAfter only in QUEUED, TERMINATED or FAILED: a fresh instance held QUEUED by a resource
// of concurrency 0.
async function ensureQueuedInstance(parameter) {
  await ensureInactive(parameter);
  await expectOk('POST', '/resources', { id: BLOCKER, concurrency: 0 });
  await expectOk('POST', `/workflows/${COMPONENT}`, { ...WORKFLOW_CONFIG, resources: [BLOCKER] });
  await trigger(parameter);
  await waitUntil(async () => (await activeState(parameter))?.state === 'QUEUED', `${parameter} is QUEUED`);
}

// Run an async seeding step and report its failure as the transaction's failure.
function seeding(step) {
  return (transaction, done) => {
    step(transaction).then(
      () => done(),
      (error) => {
        transaction.fail = `seeding failed: ${error.message}`;
        done();
      },
    );
  };
}

hooks.beforeEach(seeding(async () => {
  await expectOk('POST', `/workflows/${COMPONENT}`, WORKFLOW_CONFIG);
  await expectOk('PATCH', `/workflows/${COMPONENT}/${WORKFLOW}/state`, { enabled: true });
}));

for (const name of ['Workflows > Workflow Instances > Get Workflow Instances',
                    'Status > Active States > Get Active States',
                    'Status > Events > Get Workflow Instance events',
                    'Scheduler > Halt > Send Halt']) {
  hooks.before(name, seeding(() => ensureRunningInstance(EXAMPLE_PARAMETER)));
}

hooks.before('Workflows > Workflow Instance > Get Workflow Instance',
  seeding(() => ensureRunningInstance('2016-07-13T08')));

hooks.before('Scheduler > Retry > Send Retry', seeding(() => ensureQueuedInstance(EXAMPLE_PARAMETER)));

// The example triggers an instance that earlier examples left active: Styx refuses a second trigger.
hooks.before('Scheduler > Trigger > Trigger Workflow Instance', seeding(() => ensureInactive(EXAMPLE_PARAMETER)));

for (const name of ['Resources > Resources > Get Resources',
                    'Resources > Resource > Get Resource',
                    'Resources > Resource > Modify Resource']) {
  hooks.before(name, seeding(() => expectOk('POST', '/resources', { id: RESOURCE, concurrency: 20 })));
}

// The example's backfill id is fixed; ids are generated, so the request goes to a backfill made here.
// Its response example has trailing commas (not JSON), which would make gavel compare it as text: the
// expected body is made JSON by dropping them, so the keys are still checked.
hooks.before('Backfills > Backfill > Get Backfill', seeding(async (transaction) => {
  const backfill = await expectOk('POST', '/backfills', {
    component: COMPONENT,
    workflow: WORKFLOW,
    start: '2017-01-01T00:00:00Z',
    end: '2017-01-01T01:00:00Z',
    concurrency: 10,
    description: 'fixed bug and reproduce data',
    trigger_parameters: TRIGGER_PARAMETERS,
  });
  const statusOf = async () => (await expectOk('GET', `/backfills/${backfill.id}?status=true`)).statuses;
  await waitUntil(async () => (await statusOf()).active_states[0]?.state === 'RUNNING',
    `the backfill's instance is RUNNING`);
  transaction.fullPath = transaction.fullPath.replace(EXAMPLE_BACKFILL_ID, backfill.id);
  transaction.request.uri = transaction.request.uri.replace(EXAMPLE_BACKFILL_ID, backfill.id);
  transaction.expected.body = transaction.expected.body.replace(/,(\s*[}\]])/g, '$1');
}));
