// drizzle-kit reads the D1 schema from src/worker/db/schema.ts. `npx drizzle-kit generate` writes SQL and
// snapshots to drizzle/; the reviewed SQL is copied to migrations/NNNN_<what>.sql, which wrangler applies
// (`wrangler d1 migrations apply DB`). Never `drizzle-kit push`. See docs/storage.md.
import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'sqlite',
  schema: './src/worker/db/schema.ts',
  out: './drizzle',
});
