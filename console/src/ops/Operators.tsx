// The operators view (admins): the cluster's nodes, accounts, and integrations.

import { useState } from 'preact/hooks';
import { Integrations } from './Integrations.js';
import { Nodes } from './Nodes.js';
import { People } from './People.js';

const TABS = { nodes: 'Nodes', people: 'Accounts', integrations: 'Keys and webhooks' } as const;

export function Operators({ myId }: { myId: string }) {
  const [tab, setTab] = useState<keyof typeof TABS>('nodes');
  return (
    <section class="page" aria-label="Operators">
      <h2>Operators</h2>
      <div role="tablist" class="tabs">
        {(Object.keys(TABS) as (keyof typeof TABS)[]).map((k) => (
          <button type="button" role="tab" key={k} aria-selected={tab === k} class={tab === k ? 'tab on' : 'tab'} onClick={() => setTab(k)}>
            {TABS[k]}
          </button>
        ))}
      </div>
      {tab === 'nodes' && <Nodes />}
      {tab === 'people' && <People myId={myId} />}
      {tab === 'integrations' && <Integrations />}
    </section>
  );
}
