import { recordGraph, toGraphView } from '../shared/useCases/graph';
import { json } from '../shared/api/route';
import { registerRoute } from '../shared/hosts/azureFunctions/register';
import { graphQuerySchema, graphSchema, recordParams } from '../shared/api/schemas';

// The graph behind the connection explorer: one list page per expanded record, never a scan.
registerRoute({
  name: 'getRecordGraph',
  operationId: 'GetRecordGraph',
  summary: 'Get the graph of a record',
  description:
    'Returns the records connected to a record, one or two hops away, and the connections between them, for graphs and charts.',
  method: 'GET',
  route: 'records/{recordid}/graph',
  params: recordParams,
  query: graphQuerySchema,
  visibility: 'advanced',
  response: { status: 200, description: 'The records and connections around the record.', schema: graphSchema },
  handler: async ({ request, services, caller, params: { recordid }, query }) => {
    const [graph, catalog] = await Promise.all([
      recordGraph(services.connections, caller, recordid, query),
      services.roles.catalog(),
    ]);
    return json(200, toGraphView(graph, query, { types: services.types, catalog, requestUrl: request.url }));
  },
});
