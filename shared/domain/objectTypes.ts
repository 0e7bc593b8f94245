/**
 * Object type codes, from the seed documents: the base codes of the Connection EntityType page, and the
 * codes the Customer Service and Sales solutions assign to their own tables. A solution's codes depend on
 * the order solutions were installed in, which is why the same table (Session) is 10857 in one
 * organisation and 10747 in another: a deployment picks its profile, and may add its own custom tables.
 */
export interface ObjectType {
  code: number;
  name: string;
}

export type ObjectTypeProfile = 'base' | 'customerservice' | 'sales';

const baseTypes: Record<string, number> = {
  account: 1,
  contact: 2,
  systemuser: 8,
  team: 9,
  position: 50,
  socialprofile: 99,
  territory: 2013,
  activitypointer: 4200,
  appointment: 4201,
  email: 4202,
  fax: 4204,
  letter: 4207,
  phonecall: 4210,
  task: 4212,
  socialactivity: 4216,
  recurringappointmentmaster: 4251,
  processsession: 4710,
  channelaccessprofilerule: 9400,
  goal: 9600,
  knowledgebaserecord: 9930,
  knowledgearticle: 9953,
  adx_invitation: 10269,
  adx_inviteredemption: 10270,
  mspp_publishingstatetransitionrule: 10289,
  mspp_shortcut: 10291,
  mspp_website: 10303,
};

const customerServiceTypes: Record<string, number> = {
  adx_invitation: 10410,
  adx_inviteredemption: 10411,
  mspp_publishingstatetransitionrule: 10430,
  mspp_shortcut: 10432,
  mspp_website: 10444,
  msdyn_customerasset: 10489,
  msdyn_iotalert: 10511,
  msdyn_iotdevice: 10512,
  msdyn_iotdevicecategory: 10513,
  msdyn_iotdevicecommand: 10514,
  msdyn_iotdeviceregistrationhistory: 10518,
  msdyn_postalbum: 10719,
  msfp_alert: 10724,
  msfp_surveyinvite: 10739,
  msfp_surveyresponse: 10742,
  msdyn_liveconversation: 10828,
  msdyn_ocliveworkitem: 10840,
  msdyn_ocsession: 10857,
  msdyn_sequence: 11011,
  msdyn_sequencetarget: 11013,
  msdyn_assignmentrule: 11025,
  msdyn_assignmentmap: 11028,
  msdyn_salessuggestion: 11035,
  msdyn_suggestionprincipalobjectaccess: 11044,
  msdyn_copilottranscript: 11125,
  msdyn_bookingalert: 11365,
  msdyn_bookingalertstatus: 11366,
  msdyn_bookingrule: 11368,
  msdyn_resourceterritory: 11379,
  msdyn_systemuserschedulersetting: 11382,
  msdyn_timegroup: 11383,
  msdyn_timegroupdetail: 11384,
  msdyn_ocvoicemail: 11452,
  msdyn_ocoutboundmessage: 11466,
};

const salesTypes: Record<string, number> = {
  msdyn_postalbum: 10627,
  msfp_alert: 10632,
  msfp_surveyinvite: 10642,
  msfp_surveyresponse: 10644,
  msdyn_liveconversation: 10718,
  msdyn_ocliveworkitem: 10730,
  msdyn_ocsession: 10747,
  msdyn_sequence: 10863,
  msdyn_sequencetarget: 10865,
  msdyn_assignmentrule: 10877,
  msdyn_assignmentmap: 10880,
  msdyn_salessuggestion: 10887,
  msdyn_suggestionprincipalobjectaccess: 10896,
  msdyn_copilottranscript: 10942,
};

const profiles: Record<ObjectTypeProfile, Record<string, number>> = {
  base: {},
  customerservice: customerServiceTypes,
  sales: salesTypes,
};

export class ObjectTypeRegistry {
  private readonly byCode = new Map<number, ObjectType>();
  private readonly byName = new Map<string, ObjectType>();

  constructor(types: Record<string, number>) {
    for (const [name, code] of Object.entries(types)) {
      const existing = this.byCode.get(code);
      if (existing) {
        throw new Error(`Object type code ${code} is given to both ${existing.name} and ${name}`);
      }
      const type = { code, name };
      this.byCode.set(code, type);
      this.byName.set(name, type);
    }
  }

  /** Accepts a code (number or digits) or a logical name, case-insensitively; undefined when unknown. */
  resolve(value: number | string): ObjectType | undefined {
    if (typeof value === 'number') return this.byCode.get(value);
    const text = value.trim();
    if (/^\d+$/.test(text)) return this.byCode.get(Number(text));
    return this.byName.get(text.toLowerCase());
  }

  list(): ObjectType[] {
    return [...this.byCode.values()].sort((a, b) => a.code - b.code);
  }
}

/** Parses CUSTOM_OBJECT_TYPES: "10900:new_project,10901:new_site". */
export function parseCustomObjectTypes(text: string | undefined): Record<string, number> {
  if (!text) return {};
  const types: Record<string, number> = {};
  for (const entry of text
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)) {
    const match = /^(\d{1,9})\s*:\s*([a-z][a-z0-9_]{0,127})$/i.exec(entry);
    if (!match?.[1] || !match[2]) {
      throw new Error(`CUSTOM_OBJECT_TYPES entry "${entry}" is not "code:logicalname"`);
    }
    types[match[2].toLowerCase()] = Number(match[1]);
  }
  return types;
}

/**
 * A profile's codes replace the base codes of the same tables; custom types come last and may not take
 * a code or a name that is already in use.
 */
export function buildObjectTypeRegistry(
  profile: ObjectTypeProfile,
  custom: Record<string, number> = {},
): ObjectTypeRegistry {
  const types = { ...baseTypes, ...profiles[profile] };
  for (const [name, code] of Object.entries(custom)) {
    if (name in types) throw new Error(`Custom object type ${name} is already defined with code ${types[name]}`);
    types[name] = code;
  }
  return new ObjectTypeRegistry(types);
}
