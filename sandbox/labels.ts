// Every object peerless creates on an engine carries these labels, so a
// restarted daemon can find (and remove) exactly what it left behind.
export const LABEL = {
  managedBy: 'peerless.managed-by',
  host: 'peerless.host',
  namespace: 'peerless.namespace',
  function: 'peerless.function',
  activation: 'peerless.activation',
  role: 'peerless.role',
} as const;

export const MANAGED_BY = 'peerless';
