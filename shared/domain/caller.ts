/** Who is calling: a principal (Entra object id), the teams (groups) it belongs to, and whether it administers. */
export interface Caller {
  id: string;
  teams: string[];
  isAdmin: boolean;
}
