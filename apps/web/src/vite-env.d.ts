/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** `ws` (default) or `http`: how the dashboard's client reaches the broker. */
  readonly VITE_OSQUEUE_TRANSPORT?: string
}
