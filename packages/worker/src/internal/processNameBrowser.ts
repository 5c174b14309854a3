/** In a browser there is no host name or pid to give (see processNameNode.ts). */
export const processName = (): string => "browser"
